"""TrainingClient: Kubeflow Training Operator V1's `TrainingClient`, over a local or Kubernetes backend.

Every public method of Kubeflow 1.9's client is here with its parameters, defaults, positional
order, return types and exceptions; kubetune's own options follow, keyword-only. Jobs are
PyTorchJobs: `get_job` returns Kubeflow's `KubeflowOrgV1PyTorchJob` (on the local backend, the
PyTorchJob kubetune would create for the job, with the local status), pods are `V1Pod` objects.
kubetune's view of a job (progress, output directory, restarts) is `get_job_report`.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kubetune.contract import conditions
from kubetune.contract.conditions import Condition
from kubetune.contract.spec import JobSpec, KubernetesExtras
from kubetune.training.api import arguments, objects
from kubetune.training.backends.base import Backend, PodSelector
from kubetune.training.constants import constants
from kubetune.training.job import JobReport, LogLine

if TYPE_CHECKING:
    from kubeflow.training.models import KubeflowOrgV1JobCondition, KubeflowOrgV1PyTorchJob
    from kubernetes.client import (
        Configuration,
        V1DeleteOptions,
        V1EnvFromSource,
        V1EnvVar,
        V1Pod,
        V1ResourceRequirements,
    )

    from kubetune.params.hugging_face import (
        HuggingFaceDatasetParams,
        HuggingFaceModelParams,
        HuggingFaceTrainerParams,
    )
    from kubetune.params.local import LocalDatasetParams
    from kubetune.params.mix import DatasetMix, MixedDataset
    from kubetune.params.s3 import S3DatasetParams

logger = logging.getLogger(__name__)

BACKENDS = ("local", "kubernetes")
BACKEND_ENV = "KUBETUNE_BACKEND"
# Present inside a Kubernetes pod that mounts a service account.
SERVICE_ACCOUNT_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"
_STATUS_FORMAT = "{:<30.30} {:<20.20} {}"


def choose_backend(
    backend: str | None = None,
    config_file: str | None = None,
    context: str | None = None,
    client_configuration: Configuration | None = None,
) -> str:
    """The backend a TrainingClient uses: `backend` if given, else $KUBETUNE_BACKEND, else
    'kubernetes' when a Kubernetes config argument is given or this process runs in a pod (a
    service-account token is mounted), else 'local'.

    Raises:
        ValueError: the chosen name is not a backend.
    """
    chosen = backend or os.environ.get(BACKEND_ENV)
    if not chosen:
        in_pod = Path(SERVICE_ACCOUNT_TOKEN).is_file()
        k8s_config = config_file or context or client_configuration is not None
        chosen = "kubernetes" if k8s_config or in_pod else "local"
    if chosen not in BACKENDS:
        raise ValueError(f"backend={chosen!r}: allowed: {', '.join(BACKENDS)}")
    return chosen


def _has_condition(found: list[KubeflowOrgV1JobCondition], condition_type: str) -> bool:
    return any(
        c.type == condition_type and c.status == constants.CONDITION_STATUS_TRUE for c in found
    )


class TrainingClient:
    """Creates training jobs and follows them, as Kubeflow Training V1's `TrainingClient`.

    The backend is chosen by `choose_backend`: local processes under torchrun unless
    `backend='kubernetes'`, $KUBETUNE_BACKEND, a Kubernetes config argument (`config_file`,
    `context`, `client_configuration`) or a service-account token (inside a pod) says otherwise.
    `namespace` defaults to 'default' locally, on Kubernetes to the kubeconfig context's
    namespace (inside a pod: the pod's). `job_kind` must be 'PyTorchJob'. `api`: on Kubernetes,
    'pytorchjob' (Training Operator V1, the default) or 'trainjob' (Kubeflow Trainer V2; then
    `get_job` returns the TrainJob as a dict). `home`: the local backend's state directory
    (default $KUBETUNE_HOME or ~/.kubetune).
    """

    def __init__(
        self,
        config_file: str | None = None,
        context: str | None = None,
        client_configuration: Configuration | None = None,
        namespace: str | None = None,
        job_kind: str = constants.PYTORCHJOB_KIND,
        *,
        backend: str | None = None,
        api: str = "pytorchjob",
        home: str | os.PathLike[str] | None = None,
    ) -> None:
        """Makes the client and its backend (contacting no cluster yet).

        Raises:
            ValueError: an unknown backend, api or job_kind.
        """
        self.job_kind = self._kind(job_kind)
        chosen = choose_backend(backend, config_file, context, client_configuration)
        self.backend: Backend
        if chosen == "kubernetes":
            from kubetune.training.backends.kubernetes.backend import KubernetesBackend

            self.backend = KubernetesBackend(
                namespace=namespace,
                config_file=config_file,
                context=context,
                client_configuration=client_configuration,
                api=api,
            )
        else:
            from kubetune.training.backends.local.backend import LocalBackend

            self.backend = LocalBackend(namespace=namespace, home=home)
        self.namespace = self.backend.namespace

    # --- arguments -----------------------------------------------------------------------------

    @staticmethod
    def _kind(job_kind: str | None) -> str:
        if job_kind not in (None, constants.PYTORCHJOB_KIND):
            raise ValueError(
                f"job_kind={job_kind!r}: kubetune runs {constants.PYTORCHJOB_KIND} jobs only; "
                f"allowed: {constants.PYTORCHJOB_KIND!r} (TFJob, MPIJob, XGBoostJob, PaddleJob "
                "and JAXJob are not supported)"
            )
        return constants.PYTORCHJOB_KIND

    def _ns(self, namespace: str | None) -> str:
        return namespace or self.namespace

    @property
    def _trainjob(self) -> bool:
        return self.backend.api == "trainjob"

    def _job_model(self, data: dict[str, Any]) -> KubeflowOrgV1PyTorchJob | dict[str, Any]:
        """A PyTorchJob as `KubeflowOrgV1PyTorchJob`; a TrainJob stays a dict (no V1 model)."""
        if data.get("kind") == "TrainJob":
            return data
        job: KubeflowOrgV1PyTorchJob = objects.pytorchjob(data)
        return job

    def _kubernetes_settings(
        self,
        env: arguments.EnvArgument,
        init_env: arguments.EnvArgument,
        resources: dict[str, Any] | None,
    ) -> tuple[KubernetesExtras, list[str]]:
        settings = arguments.kubernetes_settings(env, init_env, resources)
        problems = env.problems + init_env.problems + self.backend.unsupported_settings(settings)
        return settings, problems

    # --- create --------------------------------------------------------------------------------

    def train(
        self,
        name: str,
        namespace: str | None = None,
        num_workers: int = 1,
        num_procs_per_worker: int | str = 1,
        resources_per_worker: dict[str, str | int | float] | V1ResourceRequirements | None = None,
        model_provider_parameters: HuggingFaceModelParams | None = None,
        dataset_provider_parameters: HuggingFaceDatasetParams
        | S3DatasetParams
        | LocalDatasetParams
        | DatasetMix
        | list[HuggingFaceDatasetParams | S3DatasetParams | LocalDatasetParams | MixedDataset]
        | None = None,
        trainer_parameters: HuggingFaceTrainerParams | None = None,
        init_env_vars: dict[str, str] | list[V1EnvVar | V1EnvFromSource] | None = None,
        env_vars: dict[str, str] | list[V1EnvVar | V1EnvFromSource] | None = None,
        storage_config: dict[str, Any] | None = None,
        *,
        labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None,
        queue_name: str | None = None,
        max_restarts: int = 3,
        wait: bool = False,
        wait_timeout: float = 24 * 3600,
        dry_run: bool = False,
    ) -> list[dict[str, Any]] | None:
        """Creates a fine-tuning job (storage initializer, then torchrun workers) without
        waiting, as Kubeflow's `train` does.

        Args:
            num_workers: torchrun's nnodes (one pod or simulated node each).
            num_procs_per_worker: torchrun's nproc-per-node, or 'auto'.
            dataset_provider_parameters: one dataset's params, or several to train on as one
                (a list of params and `MixedDataset`s, or a `DatasetMix`).
            resources_per_worker: {'cpu': 4, 'memory': '16G', 'gpu': 1} (requests and limits)
                or a `V1ResourceRequirements`.
            env_vars, init_env_vars: environment of every worker and of the storage
                initializer: a dict, or a list of `V1EnvVar`/`V1EnvFromSource` (entries that
                read a Secret or ConfigMap need Kubernetes).
            storage_config: any of size, storage_class, access_modes of the workspace volume
                (Kubernetes; defaults: '10Gi', the cluster's default class, ReadWriteOnce for
                one worker and ReadWriteMany for more).
            labels, annotations, queue_name: kubetune's options for Kubernetes (queue_name:
                a Kueue LocalQueue).
            max_restarts: how often a failed worker group restarts from its last checkpoint.
            wait: block until Succeeded; `wait_timeout` seconds at most.
            dry_run: return the objects that would be created (Kubernetes), create nothing.

        Returns:
            None; with `dry_run`, the objects in API form.

        Raises:
            ValueError: every problem with the arguments, at once, before anything is created.
            RuntimeError: the backend refused the job (a job of that name exists, ...), or with
                `wait` the job failed.
            TimeoutError: with `wait`, the job did not succeed within `wait_timeout` seconds.
        """
        spec, secrets = self.job_spec(
            name,
            namespace,
            num_workers,
            num_procs_per_worker,
            resources_per_worker,
            model_provider_parameters,
            dataset_provider_parameters,
            trainer_parameters,
            init_env_vars,
            env_vars,
            storage_config,
            labels=labels,
            annotations=annotations,
            queue_name=queue_name,
            max_restarts=max_restarts,
        )
        if dry_run:
            return self.backend.render(spec, secrets)
        self.backend.create_job(spec, secrets)
        if wait:
            self.wait_for_job_conditions(
                name, namespace=spec.namespace, wait_timeout=wait_timeout, polling_interval=1
            )
        return None

    def job_spec(
        self,
        name: str,
        namespace: str | None = None,
        num_workers: int = 1,
        num_procs_per_worker: int | str = 1,
        resources_per_worker: Any = None,
        model_provider_parameters: Any = None,
        dataset_provider_parameters: Any = None,
        trainer_parameters: Any = None,
        init_env_vars: Any = None,
        env_vars: Any = None,
        storage_config: dict[str, Any] | None = None,
        *,
        labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None,
        queue_name: str | None = None,
        max_restarts: int = 3,
        extra_problems: list[str] | None = None,
    ) -> tuple[JobSpec, dict[str, str]]:
        """The JobSpec and the secret environment variables that `train()` with these
        arguments creates a job from, without creating anything. Raises one ValueError listing
        every problem (`extra_problems`, found by the caller, included)."""
        from kubetune.params.job import build_job_spec

        env = arguments.env_argument("env_vars", env_vars)
        init_env = arguments.env_argument("init_env_vars", init_env_vars)
        resources, api_resources = arguments.resources_argument(resources_per_worker)
        settings, problems = self._kubernetes_settings(env, init_env, api_resources)
        return build_job_spec(
            name=name,
            namespace=self._ns(namespace),
            num_workers=num_workers,
            num_procs_per_worker=num_procs_per_worker,
            resources_per_worker=resources,
            model_provider_parameters=model_provider_parameters,
            dataset_provider_parameters=dataset_provider_parameters,
            trainer_parameters=trainer_parameters,
            storage_config=storage_config,
            env_vars=env.plain,
            init_env_vars=init_env.plain,
            labels=labels,
            annotations=annotations,
            queue_name=queue_name,
            max_restarts=max_restarts,
            kubernetes=settings,
            extra_problems=[*(extra_problems or []), *problems],
        )

    def create_job(
        self,
        job: KubeflowOrgV1PyTorchJob | None = None,
        name: str | None = None,
        namespace: str | None = None,
        job_kind: str | None = None,
        base_image: str | None = None,
        train_func: Callable[..., object] | None = None,
        parameters: dict[str, Any] | None = None,
        num_workers: int | None = 1,
        num_procs_per_worker: int | str | None = None,
        resources_per_worker: dict[str, str | int | float] | V1ResourceRequirements | None = None,
        num_chief_replicas: int | None = None,
        num_ps_replicas: int | None = None,
        packages_to_install: list[str] | None = None,
        pip_index_url: str = constants.DEFAULT_PIP_INDEX_URL,
        env_vars: dict[str, str] | list[V1EnvVar | V1EnvFromSource] | None = None,
        *,
        labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None,
        queue_name: str | None = None,
        max_restarts: int = 3,
        dry_run: bool = False,
    ) -> list[dict[str, Any]] | None:
        """Creates a PyTorchJob, as Kubeflow's `create_job` does, in one of two forms.

        `job=`: a `KubeflowOrgV1PyTorchJob`, created as is (Kubernetes only; with it only
        `namespace` may be given). `train_func=`: a function that every worker process runs
        under torchrun (with one worker and no `num_procs_per_worker`, under `python -u`), with
        the distributed environment a PyTorchJob sets (MASTER_ADDR, MASTER_PORT, WORLD_SIZE,
        RANK, LOCAL_RANK, PET_*), called as `train_func(parameters)` (or `train_func()`). It
        travels as source text, so it must import what it uses inside itself; lambdas, closures,
        functions without readable source and parameters that are not Python literals are
        refused (ValueError, nothing created). `packages_to_install` are pip-installed from
        `pip_index_url` before it runs (locally: those not installed yet, into a folder of the
        job's own). `base_image` is the container image on Kubernetes (default: kubetune's
        trainer image); `base_image` without `train_func` runs the image's own command
        (Kubernetes only). Locally the job has the lifecycle of a `train()` job: status, logs,
        restarts, delete; it survives the client.

        Returns:
            None; with `dry_run=True`, the objects that would be created (Kubernetes), in API
            form, without creating them.

        Raises:
            ValueError: every problem with the arguments, at once, before anything is created.
            RuntimeError: the backend refused the job.
        """
        self._kind(job_kind)
        if job is not None:
            self._create_from_object(job, namespace, locals())
            return None
        if train_func is None and base_image is None:
            raise ValueError(
                "create_job: give `job` (a KubeflowOrgV1PyTorchJob), `train_func` (a function to "
                "run on every worker) or `base_image` (an image to run)"
            )
        if self._trainjob:
            raise ValueError(
                "create_job: with api='trainjob' kubetune makes TrainJobs through train() only; "
                "use TrainingClient(api='pytorchjob') for create_job"
            )
        from kubetune.training.functions import function_job_spec

        env = arguments.env_argument("env_vars", env_vars)
        resources, api_resources = arguments.resources_argument(resources_per_worker)
        settings, problems = self._kubernetes_settings(
            env, arguments.EnvArgument(plain=None), api_resources
        )
        if num_chief_replicas is not None or num_ps_replicas is not None:
            problems.append(
                "num_chief_replicas/num_ps_replicas: TFJob replicas; a PyTorchJob has a Master and Workers"
            )
        if not self.backend.runs_container_images and train_func is None:
            problems.append(
                f"base_image={base_image!r}: a container image runs only on Kubernetes; use "
                "TrainingClient(backend='kubernetes'), or pass train_func to run a function locally"
            )
        if name is None:
            problems.append("name: must be set to create a job from train_func or base_image")
        spec = function_job_spec(
            name=name,
            namespace=self._ns(namespace),
            train_func=train_func,
            parameters=parameters,
            base_image=base_image,
            num_workers=num_workers,
            num_procs_per_worker=num_procs_per_worker,
            resources_per_worker=resources,
            packages_to_install=packages_to_install,
            pip_index_url=pip_index_url,
            env_vars=env.plain,
            kubernetes=settings,
            labels=labels,
            annotations=annotations,
            queue_name=queue_name,
            max_restarts=max_restarts,
            extra_problems=problems,
        )
        if dry_run:
            return self.backend.render(spec, {})
        self.backend.create_job(spec, {})
        return None

    def _create_from_object(
        self, job: KubeflowOrgV1PyTorchJob, namespace: str | None, given: dict[str, Any]
    ) -> None:
        allowed = {"self", "job", "namespace", "pip_index_url", "num_workers", "max_restarts"}
        extra = sorted(
            key for key, value in given.items() if key not in allowed and value not in (None, False)
        )
        if extra:
            raise ValueError(
                f"create_job(job=...): only `namespace` may be given with `job`; also given: {', '.join(extra)}"
            )
        from kubeflow.training.models import KubeflowOrgV1PyTorchJob

        if not isinstance(job, KubeflowOrgV1PyTorchJob):
            raise ValueError(
                f"job={type(job).__name__}: must be a KubeflowOrgV1PyTorchJob "
                "(from kubetune.training import KubeflowOrgV1PyTorchJob)"
            )
        data = objects.to_api(job)
        data.setdefault("apiVersion", constants.API_VERSION)
        data.setdefault("kind", constants.PYTORCHJOB_KIND)
        metadata = data.get("metadata") or {}
        if not metadata.get("name"):
            raise ValueError("job.metadata.name: must be set")
        self.backend.create_job_object(
            data, namespace or metadata.get("namespace") or self.namespace
        )

    # --- read ----------------------------------------------------------------------------------

    def get_job(
        self,
        name: str,
        namespace: str | None = None,
        job_kind: str | None = None,
        timeout: int = constants.DEFAULT_TIMEOUT,
    ) -> KubeflowOrgV1PyTorchJob | dict[str, Any]:
        """The job as a `KubeflowOrgV1PyTorchJob` (metadata, spec, status with conditions, start
        and completion times, replica statuses; a TrainJob, with api='trainjob', as a dict).
        kubetune's extras are annotations on it: `kubetune.io/output-dir` (both backends);
        `kubetune.io/progress` (JSON), `kubetune.io/restarts` and, while queued,
        `kubetune.io/queue-position` (local backend; on Kubernetes `get_job_report` reads
        progress and restarts from the pods).

        Raises:
            RuntimeError: the job does not exist.
            TimeoutError: the API server did not answer within `timeout` seconds.
        """
        self._kind(job_kind)
        return self._job_model(self.backend.get_job_object(name, self._ns(namespace), timeout))

    def list_jobs(
        self,
        namespace: str | None = None,
        job_kind: str | None = None,
        timeout: int = constants.DEFAULT_TIMEOUT,
    ) -> list[KubeflowOrgV1PyTorchJob | dict[str, Any]]:
        """Every PyTorchJob of the namespace (on Kubernetes also those kubetune did not create),
        as `get_job` returns them.

        Raises:
            TimeoutError: the API server did not answer within `timeout` seconds.
        """
        self._kind(job_kind)
        return [
            self._job_model(d) for d in self.backend.list_job_objects(self._ns(namespace), timeout)
        ]

    def get_job_conditions(
        self,
        name: str | None = None,
        namespace: str | None = None,
        job_kind: str | None = None,
        job: KubeflowOrgV1PyTorchJob | dict[str, Any] | None = None,
        timeout: int = constants.DEFAULT_TIMEOUT,
    ) -> list[KubeflowOrgV1JobCondition]:
        """The job's conditions (`KubeflowOrgV1JobCondition`), oldest first; [] before it has
        any. Give `name`, or `job` (a job object from `get_job`) to read it without a request.

        Raises:
            ValueError: neither `name` nor a job object is given.
            RuntimeError: the job does not exist.
        """
        self._kind(job_kind)
        if job is None:
            if name is None:
                raise ValueError("get_job_conditions: give the job's `name` or a `job` object")
            job = self.get_job(name, namespace, timeout=timeout)
        if isinstance(job, dict) and job.get("kind") == "TrainJob":
            from kubetune.training.backends.kubernetes.status import job_from_trainjob

            return [
                objects.condition(
                    {
                        "type": c.type,
                        "status": c.status,
                        "reason": c.reason,
                        "message": c.message,
                        "lastTransitionTime": c.last_transition_time,
                    }
                )
                for c in job_from_trainjob(job).conditions
            ]
        from kubeflow.training.models import KubeflowOrgV1PyTorchJob

        if not isinstance(job, KubeflowOrgV1PyTorchJob):
            raise ValueError(f"job={type(job).__name__}: must be a KubeflowOrgV1PyTorchJob")
        if job.status is None or not job.status.conditions:
            return []
        return list(job.status.conditions)

    def is_job_created(
        self,
        name: str | None = None,
        namespace: str | None = None,
        job_kind: str | None = None,
        job: KubeflowOrgV1PyTorchJob | dict[str, Any] | None = None,
        timeout: int = constants.DEFAULT_TIMEOUT,
    ) -> bool:
        """Whether the job has a true Created condition."""
        found = self.get_job_conditions(name, namespace, job_kind, job, timeout)
        return _has_condition(found, Condition.CREATED)

    def is_job_running(
        self,
        name: str | None = None,
        namespace: str | None = None,
        job_kind: str | None = None,
        job: KubeflowOrgV1PyTorchJob | dict[str, Any] | None = None,
        timeout: int = constants.DEFAULT_TIMEOUT,
    ) -> bool:
        """Whether the job has a true Running condition."""
        found = self.get_job_conditions(name, namespace, job_kind, job, timeout)
        return _has_condition(found, Condition.RUNNING)

    def is_job_restarting(
        self,
        name: str | None = None,
        namespace: str | None = None,
        job_kind: str | None = None,
        job: KubeflowOrgV1PyTorchJob | dict[str, Any] | None = None,
        timeout: int = constants.DEFAULT_TIMEOUT,
    ) -> bool:
        """Whether the job has a true Restarting condition."""
        found = self.get_job_conditions(name, namespace, job_kind, job, timeout)
        return _has_condition(found, Condition.RESTARTING)

    def is_job_succeeded(
        self,
        name: str | None = None,
        namespace: str | None = None,
        job_kind: str | None = None,
        job: KubeflowOrgV1PyTorchJob | dict[str, Any] | None = None,
        timeout: int = constants.DEFAULT_TIMEOUT,
    ) -> bool:
        """Whether the job has a true Succeeded condition."""
        found = self.get_job_conditions(name, namespace, job_kind, job, timeout)
        return _has_condition(found, Condition.SUCCEEDED)

    def is_job_failed(
        self,
        name: str | None = None,
        namespace: str | None = None,
        job_kind: str | None = None,
        job: KubeflowOrgV1PyTorchJob | dict[str, Any] | None = None,
        timeout: int = constants.DEFAULT_TIMEOUT,
    ) -> bool:
        """Whether the job has a true Failed condition."""
        found = self.get_job_conditions(name, namespace, job_kind, job, timeout)
        return _has_condition(found, Condition.FAILED)

    def wait_for_job_conditions(
        self,
        name: str,
        namespace: str | None = None,
        job_kind: str | None = None,
        expected_conditions: set[str] | frozenset[str] = frozenset({Condition.SUCCEEDED}),
        wait_timeout: float = 600,
        polling_interval: float = 15,
        callback: Callable[[KubeflowOrgV1PyTorchJob | dict[str, Any]], object] | None = None,
        timeout: int = constants.DEFAULT_TIMEOUT,
    ) -> KubeflowOrgV1PyTorchJob | dict[str, Any]:
        """Polls the job every `polling_interval` seconds until it reaches one of
        `expected_conditions` and returns it (as `get_job` does).

        Reached means a true condition of that type, or for Created, Running and Restarting one
        the job has passed through (a job that already finished has been Running). Each poll
        calls `callback(job)` and logs the job's name, latest condition and its time at DEBUG
        level (logger 'kubetune.training.api.training_client'), as Kubeflow does.

        Raises:
            RuntimeError: as soon as the job fails (unless Failed is expected), with the
                failure's reason and message; or the job does not exist.
            TimeoutError: after `wait_timeout` seconds.
            ValueError: an unknown condition.
        """
        self._kind(job_kind)
        expected = set(expected_conditions)
        if not expected or not expected <= constants.JOB_CONDITIONS:
            raise ValueError(
                f"expected_conditions={sorted(expected)}: must be a non-empty subset of "
                f"{sorted(constants.JOB_CONDITIONS)}"
            )
        namespace = self._ns(namespace)
        deadline = time.monotonic() + wait_timeout
        logger.debug(_STATUS_FORMAT.format("NAME", "STATE", "TIME"))
        while True:
            job = self.get_job(name, namespace, timeout=timeout)
            found = self.get_job_conditions(job=job)
            if found:
                latest = found[-1]
                logger.debug(_STATUS_FORMAT.format(name, latest.type, latest.last_transition_time))
            if callback:
                callback(job)
            if Condition.FAILED not in expected and _has_condition(found, Condition.FAILED):
                failed = [c for c in found if c.type == Condition.FAILED][-1]
                raise RuntimeError(
                    f"{self.job_kind} {namespace}/{name} is Failed: {failed.reason}: {failed.message}"
                )
            for condition in expected:
                passed = condition in conditions.PASSED and any(c.type == condition for c in found)
                if passed or _has_condition(found, condition):
                    return job
            if time.monotonic() >= deadline:
                latest_type = found[-1].type if found else "no condition yet"
                raise TimeoutError(
                    f"{self.job_kind} {namespace}/{name} did not reach {sorted(expected)} within "
                    f"{wait_timeout:g} s (now: {latest_type})"
                )
            time.sleep(max(0.0, min(polling_interval, deadline - time.monotonic())))

    # --- pods and logs -------------------------------------------------------------------------

    @staticmethod
    def _selector(
        is_master: bool, replica_type: str | None, replica_index: int | None
    ) -> PodSelector:
        problems = []
        if replica_type is not None and (
            not isinstance(replica_type, str)
            or replica_type.lower() not in constants.PYTORCHJOB_REPLICA_TYPES
        ):
            problems.append(
                f"replica_type={replica_type!r}: a PyTorchJob's replica types are "
                f"{', '.join(constants.PYTORCHJOB_REPLICA_TYPES)}"
            )
        if replica_index is not None and (
            isinstance(replica_index, bool)
            or not isinstance(replica_index, int)
            or replica_index < 0
        ):
            problems.append(f"replica_index={replica_index!r}: must be an integer >= 0 or None")
        if problems:
            raise ValueError("; ".join(problems))
        return PodSelector(
            is_master=is_master,
            replica_type=replica_type.lower() if replica_type else None,
            replica_index=replica_index,
        )

    def get_job_pods(
        self,
        name: str,
        namespace: str | None = None,
        is_master: bool = False,
        replica_type: str | None = None,
        replica_index: int | None = None,
        timeout: int = constants.DEFAULT_TIMEOUT,
    ) -> list[V1Pod]:
        """The job's pods (`V1Pod`), chosen by the Training Operator's labels: only the master
        (`is_master`), one replica type ('master' or 'worker'), one replica index. Locally
        worker 0 is `<name>-master-0` and worker i `<name>-worker-<i-1>`.

        Raises:
            ValueError: an unknown replica type or a bad index.
            RuntimeError: the job does not exist.
        """
        selector = self._selector(is_master, replica_type, replica_index)
        found = self.backend.list_pods(name, self._ns(namespace), selector, timeout)
        pods: list[V1Pod] = [objects.pod(p) for p in found]
        return pods

    def get_job_pod_names(
        self,
        name: str,
        namespace: str | None = None,
        is_master: bool = False,
        replica_type: str | None = None,
        replica_index: int | None = None,
        timeout: int = constants.DEFAULT_TIMEOUT,
    ) -> list[str]:
        """The names of the pods `get_job_pods` returns (same arguments, same errors)."""
        pods = self.get_job_pods(name, namespace, is_master, replica_type, replica_index, timeout)
        return [str(p.metadata.name) for p in pods if p.metadata is not None]

    def get_job_logs(
        self,
        name: str,
        namespace: str | None = None,
        job_kind: str | None = None,
        is_master: bool = True,
        replica_type: str | None = None,
        replica_index: int | None = None,
        follow: bool = False,
        timeout: int = constants.DEFAULT_TIMEOUT,
        verbose: bool = False,
    ) -> tuple[dict[str, str], dict[str, list[str]]]:
        """The logs of the chosen pods (by default the master's) as ({pod name: log text},
        events). A pod's text holds its init container's lines (the storage initializer's)
        before its training container's. With `follow`, each line is printed as
        `[Pod <name>]: <line>` as it is written, until the job ends, and then returned. With
        `verbose`, events: {'pytorchjob/<name>': [...], 'pod/<name>': [...]} as
        '<YYYY-mm-dd HH:MM:SS> <message>' (locally the job's condition changes).

        Raises:
            RuntimeError: the job does not exist.
            ValueError: an unknown replica type or a bad index.
        """
        self._kind(job_kind)
        namespace = self._ns(namespace)
        selector = self._selector(is_master, replica_type, replica_index)
        pods = self.backend.list_pods(name, namespace, selector, timeout)
        logs = {
            p["metadata"]["name"]: ""
            for p in pods
            if (p.get("status") or {}).get("phase") != constants.POD_PHASE_PENDING
        }
        for entry in self.backend.get_job_logs(name, namespace, follow, selector):
            pod = self.backend.pod_of(name, entry.source)
            if follow:
                print(f"[Pod {pod}]: {entry.line}", flush=True)
            logs[pod] = logs.get(pod, "") + entry.line + "\n"
        events: dict[str, list[str]] = {}
        if verbose:
            pod_names = [p["metadata"]["name"] for p in pods]
            events = self.backend.job_events(name, namespace, pod_names, timeout)
        return logs, events

    # --- change --------------------------------------------------------------------------------

    def update_job(
        self,
        job: KubeflowOrgV1PyTorchJob | dict[str, Any],
        name: str,
        namespace: str | None = None,
        job_kind: str | None = None,
    ) -> None:
        """Patches the job with `job` (a `KubeflowOrgV1PyTorchJob`, or a dict) as a JSON merge
        patch, as Kubeflow does.

        Raises:
            RuntimeError: the API server refused it, or the backend is local (it cannot change
                a job once created).
        """
        self._kind(job_kind)
        patch = job if isinstance(job, dict) else objects.to_api(job)
        self.backend.update_job_object(name, self._ns(namespace), patch)

    def delete_job(
        self,
        name: str,
        namespace: str | None = None,
        job_kind: str | None = None,
        delete_options: V1DeleteOptions | None = None,
        *,
        keep_outputs: bool = False,
    ) -> None:
        """Stops the job and removes what it created; `delete_options` (a `V1DeleteOptions`) is
        passed to the API server on Kubernetes and ignored locally. `keep_outputs=True` keeps
        the trained model and metrics (locally they move aside, see `kept_outputs_path`; on
        Kubernetes the workspace volume stays).

        Raises:
            RuntimeError: the job does not exist, or some of its processes did not stop.
        """
        self._kind(job_kind)
        options = None if delete_options is None else objects.to_api(delete_options)
        self.backend.delete_job(
            name, self._ns(namespace), keep_outputs=keep_outputs, delete_options=options
        )

    # --- kubetune's own view ---------------------------------------------------------------------

    def get_job_report(self, name: str, namespace: str | None = None) -> JobReport:
        """kubetune's report of a job: conditions, progress (step, loss, ETA), size, times,
        restarts, its place in the local queue and where its outputs are (`output_dir`).

        Raises:
            RuntimeError: the job does not exist.
        """
        return self.backend.get_job(name, self._ns(namespace))

    def list_job_reports(self, namespace: str | None = None) -> list[JobReport]:
        """The reports of kubetune's jobs in the namespace, oldest first."""
        return self.backend.list_jobs(self._ns(namespace))

    def stream_job_logs(
        self,
        name: str,
        namespace: str | None = None,
        follow: bool = False,
        on_poll: Callable[[], None] | None = None,
    ) -> Iterator[LogLine]:
        """Every line of the job's logs as `LogLine(source, line)`: locally the sources are
        'initializer', 'worker-0', ...; on Kubernetes 'pod/container'. Without `follow` the
        iterator ends after what has been written so far; with it, when the job ends, calling
        `on_poll()` at every polling round (e.g. to redraw a progress bar).

        Raises:
            RuntimeError: the job does not exist.
        """
        return self.backend.get_job_logs(name, self._ns(namespace), follow, on_poll=on_poll)

    def kept_outputs_path(self, name: str, namespace: str | None = None) -> Path | None:
        """Where `delete_job(name, keep_outputs=True)` leaves the outputs on the local backend
        (None when nothing would move, or on Kubernetes)."""
        return self.backend.kept_outputs_path(name, self._ns(namespace))
