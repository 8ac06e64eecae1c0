"""The constants of Kubeflow Training V1's Python SDK (`kubeflow.training.constants.constants`),
with kubetune's values where kubetune differs (images, the one supported job kind).

`STORAGE_INITIALIZER_IMAGE`, `TRAINER_TRANSFORMER_IMAGE` and `PYTORCHJOB_BASE_IMAGE` are read
from the environment when used (Kubeflow reads them at import); `STORAGE_INITIALIZER_VOLUME_MOUNT`
and `JOB_MODELS_TYPE` load the Kubernetes client and Kubeflow's model classes on first use.
"""

from __future__ import annotations

from typing import Any

from kubetune.contract.conditions import Condition as _Condition
from kubetune.contract.layout import MOUNT_PATH as _MOUNT_PATH
from kubetune.contract.spec import DEFAULT_STORAGE_SIZE as _DEFAULT_STORAGE_SIZE

# Seconds an API request to the Kubernetes API server may take (the `timeout` argument).
DEFAULT_TIMEOUT = 120
DEFAULT_PIP_INDEX_URL = "https://pypi.org/simple"
DEFAULT_NAMESPACE = "default"
ISTIO_SIDECAR_INJECTION = "sidecar.istio.io/inject"

GROUP = "kubeflow.org"
VERSION = "v1"
API_VERSION = f"{GROUP}/{VERSION}"
POD_KIND = "Pod"
POD_PHASE_PENDING = "Pending"

# Job conditions.
JOB_CONDITION_CREATED = _Condition.CREATED.value
JOB_CONDITION_RUNNING = _Condition.RUNNING.value
JOB_CONDITION_RESTARTING = _Condition.RESTARTING.value
JOB_CONDITION_SUCCEEDED = _Condition.SUCCEEDED.value
JOB_CONDITION_FAILED = _Condition.FAILED.value
JOB_CONDITIONS = {
    JOB_CONDITION_CREATED,
    JOB_CONDITION_RUNNING,
    JOB_CONDITION_RESTARTING,
    JOB_CONDITION_SUCCEEDED,
    JOB_CONDITION_FAILED,
}
CONDITION_STATUS_TRUE = "True"

# Labels the Training Operator puts on a job's pods.
JOB_NAME_LABEL = "training.kubeflow.org/job-name"
JOB_ROLE_LABEL = "training.kubeflow.org/job-role"
JOB_ROLE_MASTER = "master"
REPLICA_TYPE_LABEL = "training.kubeflow.org/replica-type"
REPLICA_INDEX_LABEL = "training.kubeflow.org/replica-index"
OPERATOR_NAME_LABEL = "training.kubeflow.org/operator-name"

REPLICA_TYPE_CHIEF = "Chief"
REPLICA_TYPE_PS = "PS"
REPLICA_TYPE_MASTER = "Master"
REPLICA_TYPE_WORKER = "Worker"
REPLICA_TYPE_SCHEDULER = "Scheduler"
REPLICA_TYPE_SERVER = "Server"
REPLICA_TYPE_LAUNCHER = "Launcher"

# The train() API.
STORAGE_INITIALIZER = "storage-initializer"
# The volume of the job's workspace (Kubeflow names it after the storage initializer).
STORAGE_INITIALIZER_VOLUME = "workspace"
PVC_DEFAULT_SIZE = _DEFAULT_STORAGE_SIZE
# kubetune's default for one worker; with several workers the default is ["ReadWriteMany"]
# (every worker writes to the shared workspace).
PVC_DEFAULT_ACCESS_MODES = ["ReadWriteOnce"]

# Job kinds. kubetune runs PyTorchJobs; the other kinds' names exist so that passing one gets
# a clear error rather than an AttributeError.
PYTORCHJOB_KIND = "PyTorchJob"
PYTORCHJOB_MODEL = "KubeflowOrgV1PyTorchJob"
PYTORCHJOB_PLURAL = "pytorchjobs"
PYTORCHJOB_CONTAINER = "pytorch"  # the name the Training Operator requires
PYTORCHJOB_REPLICA_TYPES = (REPLICA_TYPE_MASTER.lower(), REPLICA_TYPE_WORKER.lower())
TFJOB_KIND = "TFJob"
XGBOOSTJOB_KIND = "XGBoostJob"
MPIJOB_KIND = "MPIJob"
PADDLEJOB_KIND = "PaddleJob"
JAXJOB_KIND = "JAXJob"

ENTRYPOINT_TORCH = "torchrun"
ENTRYPOINT_PYTHON = "python -u"
DEFAULT_COMMAND = ["bash", "-c"]

JOB_PARAMETERS = {
    PYTORCHJOB_KIND: {
        "model": PYTORCHJOB_MODEL,
        "plural": PYTORCHJOB_PLURAL,
        "container": PYTORCHJOB_CONTAINER,
    },
}
JOB_MODELS = (PYTORCHJOB_MODEL,)

# kubetune's annotations on the job objects that get_job() returns (see docs/api.md).
OUTPUT_DIR_ANNOTATION = "kubetune.io/output-dir"
PROGRESS_ANNOTATION = "kubetune.io/progress"
RESTARTS_ANNOTATION = "kubetune.io/restarts"
QUEUE_POSITION_ANNOTATION = "kubetune.io/queue-position"
BACKEND_ANNOTATION = "kubetune.io/backend"

_LAZY = (
    "STORAGE_INITIALIZER_IMAGE",
    "TRAINER_TRANSFORMER_IMAGE",
    "PYTORCHJOB_BASE_IMAGE",
    "STORAGE_INITIALIZER_VOLUME_MOUNT",
    "JOB_MODELS_TYPE",
)


def __getattr__(name: str) -> Any:
    if name in ("STORAGE_INITIALIZER_IMAGE", "TRAINER_TRANSFORMER_IMAGE", "PYTORCHJOB_BASE_IMAGE"):
        from kubetune.training.images import resolve_images

        images = resolve_images(gpu=False)
        return images.initializer if name == "STORAGE_INITIALIZER_IMAGE" else images.trainer
    if name == "STORAGE_INITIALIZER_VOLUME_MOUNT":
        from kubernetes.client import V1VolumeMount

        return V1VolumeMount(name=STORAGE_INITIALIZER_VOLUME, mount_path=_MOUNT_PATH)
    if name == "JOB_MODELS_TYPE":
        from kubeflow.training.models import KubeflowOrgV1PyTorchJob

        return KubeflowOrgV1PyTorchJob
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# The eager names; the _LAZY ones resolve through __getattr__ (a star import leaves them out).
__all__ = [n for n in dict(globals()) if n.isupper() and not n.startswith("_")]
