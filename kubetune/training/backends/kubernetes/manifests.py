"""Pure builders of the Kubernetes objects of one job: data in, dicts out, no I/O.

A job `NAME` becomes, in creation order:

- Secret `NAME-secrets` (only when there are secrets): tokens and S3 keys, base64 in `data`,
  reaching the process that reads each (the storage initializer: model and dataset credentials;
  the trainer: `TrainingArguments.hub_token`) through `secretKeyRef` environment variables;
- ConfigMap `NAME-spec`: the JobSpec JSON, mounted read-only at /etc/kubetune/spec.json;
- PersistentVolumeClaim `NAME-workspace`: the job's workspace, mounted at /workspace in every pod;
- the job itself: a `kubeflow.org/v1` PyTorchJob or a `trainer.kubeflow.org/v1alpha1` TrainJob.

A job made by `create_job(train_func=...)` (a JobSpec with `function`) is the PyTorchJob alone,
as in Kubeflow V1: its `pytorch` containers run a bash script that installs the packages, writes
the function's program to a file and runs it with torchrun (or `python -u`).
"""

from __future__ import annotations

import base64
import shlex
from collections.abc import Sequence
from typing import Any

from kubetune.contract import layout
from kubetune.contract.quantities import GPU_KEYS, KUBERNETES_GPU_KEY
from kubetune.contract.records import PROGRESS_LOG_ENV
from kubetune.contract.secrets import INITIALIZER_SECRET_ENV_VARS, TRAINER_SECRET_ENV_VARS
from kubetune.contract.spec import (
    DEFAULT_STORAGE_SIZE,
    FunctionSpec,
    JobSpec,
    LocalDatasetSpec,
    StorageSpec,
    dataset_sources,
)
from kubetune.contract.uris import SourceKind
from kubetune.training.constants import constants
from kubetune.training.images import Images

APIS = ("pytorchjob", "trainjob")

PYTORCHJOB_GROUP, PYTORCHJOB_VERSION = constants.GROUP, constants.VERSION
PYTORCHJOB_PLURAL = constants.PYTORCHJOB_PLURAL
TRAINJOB_GROUP, TRAINJOB_VERSION, TRAINJOB_PLURAL = "trainer.kubeflow.org", "v1alpha1", "trainjobs"
TRAINJOB_RUNTIME = "torch-distributed"

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "kubetune"
JOB_NAME_LABEL = "kubetune.io/job-name"
OUTPUT_DIR_ANNOTATION = constants.OUTPUT_DIR_ANNOTATION
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"

SPEC_DIR = "/etc/kubetune"
SPEC_KEY = "spec.json"
SPEC_PATH = f"{SPEC_DIR}/{SPEC_KEY}"
WORKSPACE_DIR = layout.MOUNT_PATH
WORKSPACE_VOLUME = constants.STORAGE_INITIALIZER_VOLUME
SPEC_VOLUME = "job-spec"

INITIALIZER_CONTAINER = constants.STORAGE_INITIALIZER
PYTORCH_CONTAINER = constants.PYTORCHJOB_CONTAINER  # the name the Training Operator requires
TRAINJOB_CONTAINER = "node"  # the container of the torch-distributed runtime

ISTIO_SIDECAR_ANNOTATION = "sidecar.istio.io/inject"
FUNCTION_COMMAND = ["bash", "-c"]

INITIALIZER_COMMAND = ["python", "-m", "kubetune.storage_initializer"]
TRAINER_COMMAND = ["torchrun", "-m", "kubetune.runtime"]
JOB_ARGS = ["--spec", SPEC_PATH, "--workspace", WORKSPACE_DIR]


def secret_name(job_name: str) -> str:
    """The name of a job's Secret."""
    return f"{job_name}-secrets"


def configmap_name(job_name: str) -> str:
    """The name of a job's ConfigMap (its spec)."""
    return f"{job_name}-spec"


def pvc_name(job_name: str) -> str:
    """The name of a job's PersistentVolumeClaim (its workspace)."""
    return f"{job_name}-workspace"


def output_dir(spec: JobSpec) -> str:
    """Where the runtime writes the final model and metrics, as a path inside the workspace volume."""
    return str(spec.output_path(WORKSPACE_DIR))


def paths_pods_cannot_read(spec: JobSpec) -> list[str]:
    """Warnings for the paths in `spec` that name this machine's files: the job's pods have
    their own filesystems and cannot read them (nor keep outputs outside the job's volume)."""
    warnings: list[str] = []
    if spec.function is not None:
        return warnings
    model, dataset, _ = spec.fine_tuning
    if model.source.kind == SourceKind.LOCAL:
        warnings.append(
            f"model_provider_parameters.model_uri={model.uri!r} is a folder on this "
            "machine; the job's pods cannot read it. Use a model on the Hugging Face Hub "
            "('hf://org/name'), in S3 ('s3://bucket/prefix'), or a path that exists inside the "
            "pods (in the image, or on a PVC mounted there)"
        )
    for local in (d for d in dataset_sources(dataset) if isinstance(d, LocalDatasetSpec)):
        warnings.append(
            f"dataset_provider_parameters.local.path={local.path!r} is on this "
            "machine; the job's pods cannot read it. Use a dataset on the Hugging Face Hub "
            "(hf: HuggingFaceDatasetParams), in S3 (s3: S3DatasetParams), or a path that exists "
            "inside the pods (in the image, or on a PVC mounted there)"
        )
    given = spec.output_dir
    inside = given and given.startswith(WORKSPACE_DIR.rstrip("/") + "/")
    if given and given.startswith("/") and not inside:
        warnings.append(
            f"training_parameters.output_dir={given!r} lies outside the job's volume "
            f"({WORKSPACE_DIR}): the pods' own filesystems are lost when they end. Use a "
            f"relative output_dir (kept in the volume at {WORKSPACE_DIR}/{layout.OUTPUTS_DIR}/)"
        )
    return warnings


def base_labels(spec: JobSpec) -> dict[str, str]:
    """The labels kubetune puts on every object of the job (used to find them again)."""
    return {MANAGED_BY_LABEL: MANAGED_BY, JOB_NAME_LABEL: spec.name}


def _metadata(name: str, spec: JobSpec) -> dict[str, Any]:
    return {"name": name, "namespace": spec.namespace, "labels": base_labels(spec)}


# --- core objects ------------------------------------------------------------------------------


def build_secret(spec: JobSpec, secrets: dict[str, str]) -> dict[str, Any]:
    """The Secret holding `secrets` (environment variable name -> value), base64 in `data`."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _metadata(secret_name(spec.name), spec),
        "type": "Opaque",
        "data": {
            key: base64.b64encode(value.encode()).decode() for key, value in sorted(secrets.items())
        },
    }


def build_configmap(spec: JobSpec) -> dict[str, Any]:
    """The ConfigMap holding the JobSpec JSON under the key 'spec.json'."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(configmap_name(spec.name), spec),
        "data": {SPEC_KEY: spec.to_json()},
    }


def build_pvc(spec: JobSpec) -> dict[str, Any]:
    """The workspace PersistentVolumeClaim from `spec.storage` (size, storage_class, access_modes)."""
    default_modes = ["ReadWriteOnce"] if spec.num_workers == 1 else ["ReadWriteMany"]
    storage = spec.storage or StorageSpec(size=DEFAULT_STORAGE_SIZE, access_modes=default_modes)
    pvc_spec: dict[str, Any] = {
        "accessModes": list(storage.access_modes or default_modes),
        "resources": {"requests": {"storage": storage.size or DEFAULT_STORAGE_SIZE}},
    }
    if storage.storage_class:
        pvc_spec["storageClassName"] = storage.storage_class
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": _metadata(pvc_name(spec.name), spec),
        "spec": pvc_spec,
    }


# --- pieces of pod specs -----------------------------------------------------------------------


def resource_requirements(resources: dict[str, Any]) -> dict[str, Any]:
    """`resources_per_worker` as container requests and limits (`gpu` becomes `nvidia.com/gpu`)."""
    if not resources:
        return {}
    quantities = {
        (KUBERNETES_GPU_KEY if key in GPU_KEYS else key): str(value)
        for key, value in resources.items()
    }
    return {"requests": dict(quantities), "limits": dict(quantities)}


def plain_env(values: dict[str, str]) -> list[dict[str, Any]]:
    """Environment entries with plain values, sorted by name."""
    return [{"name": key, "value": value} for key, value in sorted(values.items())]


def secret_env(spec: JobSpec, secret_keys: list[str]) -> list[dict[str, Any]]:
    """Environment variables that read each secret from the job's Secret (never the value itself)."""
    return [
        {
            "name": key,
            "valueFrom": {"secretKeyRef": {"name": secret_name(spec.name), "key": key}},
        }
        for key in sorted(secret_keys)
    ]


def volumes(spec: JobSpec) -> list[dict[str, Any]]:
    """The workspace PVC and the JobSpec ConfigMap as pod volumes."""
    return [
        {"name": WORKSPACE_VOLUME, "persistentVolumeClaim": {"claimName": pvc_name(spec.name)}},
        {
            "name": SPEC_VOLUME,
            "configMap": {
                "name": configmap_name(spec.name),
                "items": [{"key": SPEC_KEY, "path": SPEC_KEY}],
            },
        },
    ]


def volume_mounts() -> list[dict[str, Any]]:
    """The mounts of the workspace (at /workspace) and of the spec (read-only)."""
    return [
        {"name": WORKSPACE_VOLUME, "mountPath": WORKSPACE_DIR},
        {"name": SPEC_VOLUME, "mountPath": SPEC_DIR, "readOnly": True},
    ]


def initializer_container(spec: JobSpec, image: str, secret_keys: list[str]) -> dict[str, Any]:
    """The storage initializer: fetches model and dataset into the workspace, then the marker.
    Of `secret_keys` it gets the ones it reads (model and dataset credentials)."""
    keys = [k for k in secret_keys if k in INITIALIZER_SECRET_ENV_VARS]
    container: dict[str, Any] = {
        "name": INITIALIZER_CONTAINER,
        "image": image,
        "command": list(INITIALIZER_COMMAND),
        "args": list(JOB_ARGS),
        "env": plain_env(spec.init_env) + secret_env(spec, keys) + list(spec.kubernetes.init_env),
        "volumeMounts": volume_mounts(),
    }
    if spec.kubernetes.init_env_from:
        container["envFrom"] = list(spec.kubernetes.init_env_from)
    return container


def trainer_env(spec: JobSpec) -> dict[str, str]:
    """The trainer's plain environment: unbuffered output, progress records in the log (the
    workspace volume is out of the client's reach), then the user's `env`."""
    return {"PYTHONUNBUFFERED": "1", PROGRESS_LOG_ENV: "1", **spec.env}


def container_resources(spec: JobSpec) -> dict[str, Any]:
    """The training container's resources: a `V1ResourceRequirements` as given, else
    `resources_per_worker` as requests and limits."""
    return dict(spec.kubernetes.resources or resource_requirements(spec.resources_per_worker))


def _with_env_refs(spec: JobSpec, container: dict[str, Any]) -> dict[str, Any]:
    """Adds the Kubernetes-only env entries (valueFrom, envFrom) and the resources."""
    container["env"] = container["env"] + list(spec.kubernetes.env)
    if spec.kubernetes.env_from:
        container["envFrom"] = list(spec.kubernetes.env_from)
    resources = container_resources(spec)
    if resources:
        container["resources"] = resources
    return container


def trainer_container(spec: JobSpec, image: str, secret_keys: Sequence[str] = ()) -> dict[str, Any]:
    """A `pytorch` container running torchrun; the operator supplies the PET_* rendezvous variables.
    Of `secret_keys` it gets the ones the trainer reads (TrainingArguments credentials)."""
    keys = [k for k in secret_keys if k in TRAINER_SECRET_ENV_VARS]
    container: dict[str, Any] = {
        "name": PYTORCH_CONTAINER,
        "image": image,
        "command": list(TRAINER_COMMAND),
        "args": list(JOB_ARGS),
        "env": plain_env(trainer_env(spec)) + secret_env(spec, keys),
        "volumeMounts": volume_mounts(),
    }
    return _with_env_refs(spec, container)


def function_script(function: FunctionSpec) -> str:
    """The bash script of a function job's container: pip installs the packages (if any) from
    the index, the program goes to a fresh file, the entrypoint runs it. The program is written
    through a quoted here-document, so the shell expands nothing in it."""
    lines = ["set -e"]
    if function.packages:
        pip = [
            "python", "-m", "pip", "install", "--quiet", "--no-warn-script-location",
            "--disable-pip-version-check", "--index-url", function.pip_index_url,
            *function.packages,
        ]  # fmt: skip
        lines.append(shlex.join(pip))
    program = function.program or ""
    delimiter = "KUBETUNE_TRAIN_FUNC"
    while delimiter in program:
        delimiter += "_"
    lines += [
        'program_dir="$(mktemp -d)"',
        f"cat > \"$program_dir/{function.name}.py\" <<'{delimiter}'",
        program.rstrip("\n"),
        delimiter,
        f'exec {function.entrypoint} "$program_dir/{function.name}.py"',
    ]
    return "\n".join(lines) + "\n"


def function_container(spec: JobSpec, image: str) -> dict[str, Any]:
    """The `pytorch` container of a function job: the script of `function_script`, or the
    image's own command when the job has no function (`create_job(base_image=...)`)."""
    function = spec.function
    container: dict[str, Any] = {
        "name": PYTORCH_CONTAINER,
        "image": (function.base_image if function else None) or image,
    }
    if function is not None and function.program:
        container["command"] = list(FUNCTION_COMMAND)
        container["args"] = [function_script(function)]
    container["env"] = plain_env(spec.env)
    return _with_env_refs(spec, container)


def _job_metadata(spec: JobSpec, name: str) -> dict[str, Any]:
    labels = {**spec.labels, **base_labels(spec)}
    if spec.queue_name:
        labels[QUEUE_LABEL] = spec.queue_name
    annotations = dict(spec.annotations)
    if spec.function is None:
        annotations[OUTPUT_DIR_ANNOTATION] = output_dir(spec)
    metadata = {"name": name, "namespace": spec.namespace, "labels": labels}
    if annotations:
        metadata["annotations"] = annotations
    return metadata


def _pod_metadata(spec: JobSpec) -> dict[str, Any]:
    metadata: dict[str, Any] = {"labels": {**spec.labels, **base_labels(spec)}}
    annotations = dict(spec.annotations)
    if spec.function is not None:
        # As Kubeflow V1 has it for function jobs: an Istio sidecar would keep the pod running.
        annotations.setdefault(ISTIO_SIDECAR_ANNOTATION, "false")
    if annotations:
        metadata["annotations"] = annotations
    return metadata


# --- PyTorchJob (Kubeflow Training Operator V1) ------------------------------------------------


def build_pytorchjob(spec: JobSpec, images: Images, secret_keys: list[str]) -> dict[str, Any]:
    """The PyTorchJob: a Master (with the storage initializer as init container) and
    `num_workers - 1` Workers, each restarting on failure up to `max_restarts` times."""

    def replica(replicas: int, with_initializer: bool) -> dict[str, Any]:
        if spec.function is not None:
            pod_spec: dict[str, Any] = {"containers": [function_container(spec, images.trainer)]}
            with_initializer = False
        else:
            pod_spec = {
                "containers": [trainer_container(spec, images.trainer, secret_keys)],
                "volumes": volumes(spec),
            }
        if with_initializer:
            pod_spec["initContainers"] = [
                initializer_container(spec, images.initializer, secret_keys)
            ]
        return {
            "replicas": replicas,
            "restartPolicy": "OnFailure",
            "template": {"metadata": _pod_metadata(spec), "spec": pod_spec},
        }

    replica_specs = {"Master": replica(1, with_initializer=True)}
    if spec.num_workers > 1:
        replica_specs["Worker"] = replica(spec.num_workers - 1, with_initializer=False)
    return {
        "apiVersion": f"{PYTORCHJOB_GROUP}/{PYTORCHJOB_VERSION}",
        "kind": "PyTorchJob",
        "metadata": _job_metadata(spec, spec.name),
        "spec": {
            "nprocPerNode": str(spec.num_procs_per_worker),
            "runPolicy": {"backoffLimit": spec.max_restarts, "cleanPodPolicy": "None"},
            "pytorchReplicaSpecs": replica_specs,
        },
    }


# --- TrainJob (Kubeflow Trainer V2) ------------------------------------------------------------


def trainjob_script(spec: JobSpec) -> str:
    """The node command of a TrainJob: node 0 runs the storage initializer, then every node torchrun.

    The torch-distributed runtime has no initializer step, so the initializer runs in node 0's
    container before the trainer; the other nodes' trainers wait for its completion marker.
    """
    init_env = " ".join(shlex.quote(f"{k}={v}") for k, v in sorted(spec.init_env.items()))
    initializer = shlex.join([*INITIALIZER_COMMAND, *JOB_ARGS])
    if init_env:
        initializer = f"env {init_env} {initializer}"
    return (
        "set -e\n"
        'if [ "${PET_NODE_RANK:-${JOB_COMPLETION_INDEX:-0}}" = "0" ]; then\n'
        f"  {initializer}\n"
        "fi\n"
        f"exec {shlex.join([*TRAINER_COMMAND, *JOB_ARGS])}\n"
    )


def build_trainjob(spec: JobSpec, images: Images, secret_keys: list[str]) -> dict[str, Any]:
    """The TrainJob against the `torch-distributed` ClusterTrainingRuntime, with the workspace and
    spec volumes patched into its `node` pods. The storage initializer runs in the node
    container, so its env entries join the trainer's; `envFrom` has no place in a TrainJob."""
    if spec.kubernetes.env_from or spec.kubernetes.init_env_from:
        raise ValueError(
            "env_vars/init_env_vars: a V1EnvFromSource has no place in a TrainJob's trainer; "
            "use V1EnvVar entries or api='pytorchjob'"
        )
    trainer: dict[str, Any] = {
        "image": images.trainer,
        "command": ["/bin/sh", "-c", trainjob_script(spec)],
        "env": plain_env(trainer_env(spec))
        + secret_env(spec, secret_keys)
        + list(spec.kubernetes.init_env)
        + list(spec.kubernetes.env),
        "numNodes": spec.num_workers,
    }
    if isinstance(spec.num_procs_per_worker, int):
        trainer["numProcPerNode"] = spec.num_procs_per_worker
    resources = container_resources(spec)
    if resources:
        trainer["resourcesPerNode"] = resources
    pod_patch = {
        "metadata": _pod_metadata(spec),
        "spec": {
            "volumes": volumes(spec),
            "containers": [{"name": TRAINJOB_CONTAINER, "volumeMounts": volume_mounts()}],
        },
    }
    return {
        "apiVersion": f"{TRAINJOB_GROUP}/{TRAINJOB_VERSION}",
        "kind": "TrainJob",
        "metadata": _job_metadata(spec, spec.name),
        "spec": {
            "runtimeRef": {
                "name": TRAINJOB_RUNTIME,
                "apiGroup": TRAINJOB_GROUP,
                "kind": "ClusterTrainingRuntime",
            },
            "trainer": trainer,
            "runtimePatches": [
                {
                    "manager": "kubetune.io/kubetune",
                    "trainingRuntimeSpec": {
                        "template": {
                            "spec": {
                                "replicatedJobs": [
                                    {
                                        "name": TRAINJOB_CONTAINER,
                                        "template": {"spec": {"template": pod_patch}},
                                    }
                                ]
                            }
                        }
                    },
                }
            ],
        },
    }


# --- the whole job -----------------------------------------------------------------------------


def build_objects(
    spec: JobSpec, secrets: dict[str, str], images: Images, api: str = "pytorchjob"
) -> list[dict[str, Any]]:
    """Every object of the job in creation order: [Secret,] ConfigMap, PVC, PyTorchJob|TrainJob."""
    if api not in APIS:
        raise ValueError(f"api={api!r}: allowed: {', '.join(APIS)}")
    if spec.function is not None:
        if api != "pytorchjob":
            raise ValueError(
                f"api={api!r}: a job of create_job(train_func=...) is a PyTorchJob; use api='pytorchjob'"
            )
        return [build_pytorchjob(spec, images, [])]
    keys = sorted(secrets)
    objects = [build_secret(spec, secrets)] if secrets else []
    objects += [build_configmap(spec), build_pvc(spec)]
    builder = build_pytorchjob if api == "pytorchjob" else build_trainjob
    objects.append(builder(spec, images, keys))
    return objects


def owner_reference(job: dict[str, Any]) -> dict[str, Any]:
    """An ownerReference to a created job (it needs the uid the API server assigned)."""
    return {
        "apiVersion": job["apiVersion"],
        "kind": job["kind"],
        "name": job["metadata"]["name"],
        "uid": job["metadata"]["uid"],
        "controller": False,
    }


def render_yaml(objects: list[dict[str, Any]]) -> str:
    """The objects as one multi-document YAML text (for `kubetune render` and GitOps)."""
    import yaml

    class Dumper(yaml.SafeDumper):
        pass

    def text(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    Dumper.add_representer(str, text)
    return yaml.dump_all(objects, Dumper=Dumper, sort_keys=False, default_flow_style=False)
