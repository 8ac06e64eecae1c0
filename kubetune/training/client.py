"""TrainingClient: Kubeflow Training Operator V1's fine-tuning API over a local or Kubernetes backend."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator
from typing import Any

from kubetune.training import job as conditions
from kubetune.training.backends.base import Backend
from kubetune.training.job import Job, LogLine
from kubetune.training.spec import build_job_spec

BACKENDS = ("local", "kubernetes")


class TrainingClient:
    """Creates fine-tuning jobs and follows them.

    The backend is local (processes on this machine under torchrun) unless `backend="kubernetes"`,
    the environment variable `KUBETUNE_BACKEND=kubernetes`, or any Kubernetes config argument
    (`config_file`, `context`, `client_configuration`) is given. `namespace` defaults to
    'default' (locally) or the kubeconfig context's namespace (on Kubernetes).
    `api`: on Kubernetes, 'pytorchjob' (Training Operator V1, the default) or 'trainjob'
    (Kubeflow Trainer V2).
    """

    def __init__(
        self,
        backend: str | None = None,
        namespace: str | None = None,
        config_file: str | None = None,
        context: str | None = None,
        client_configuration: Any = None,
        api: str = "pytorchjob",
        home: str | os.PathLike[str] | None = None,
    ) -> None:
        chosen = (
            backend
            or os.environ.get("KUBETUNE_BACKEND")
            or ("kubernetes" if (config_file or context or client_configuration) else "local")
        )
        if chosen not in BACKENDS:
            raise ValueError(f"backend={chosen!r}: allowed: {', '.join(BACKENDS)}")
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

    def train(
        self,
        name: str,
        namespace: str | None = None,
        num_workers: int = 1,
        num_procs_per_worker: int | str = 1,
        resources_per_worker: dict[str, Any] | None = None,
        model_provider_parameters: Any = None,
        dataset_provider_parameters: Any = None,
        trainer_parameters: Any = None,
        storage_config: dict[str, Any] | None = None,
        init_env_vars: dict[str, str] | None = None,
        env_vars: dict[str, str] | None = None,
        labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None,
        queue_name: str | None = None,
        max_restarts: int = 3,
        wait: bool = False,
        timeout: float = 24 * 3600,
        dry_run: bool = False,
    ) -> Any:
        """Creates a fine-tuning job and returns its name without waiting (unless `wait=True`).

        `num_workers` is torchrun's nnodes, `num_procs_per_worker` its nproc-per-node (or 'auto').
        `resources_per_worker`: {'cpu': 4, 'memory': '16G', 'gpu': 1}. `storage_config`: size,
        storage_class, access_modes of the workspace volume (Kubernetes). `env_vars` reach every
        worker, `init_env_vars` the storage initializer. `labels`, `annotations`, `queue_name`
        (Kueue) apply on Kubernetes. `max_restarts`: how often a failed worker group restarts
        from its last checkpoint. `wait=True` blocks until Succeeded (raises on failure).
        `dry_run=True` returns the objects that would be created (Kubernetes) without creating them.
        Every problem with the arguments is reported in one ValueError before anything is created.
        """
        spec, secrets = build_job_spec(
            name=name,
            namespace=namespace or self.namespace,
            num_workers=num_workers,
            num_procs_per_worker=num_procs_per_worker,
            resources_per_worker=resources_per_worker,
            model_provider_parameters=model_provider_parameters,
            dataset_provider_parameters=dataset_provider_parameters,
            trainer_parameters=trainer_parameters,
            storage_config=storage_config,
            env_vars=env_vars,
            init_env_vars=init_env_vars,
            labels=labels,
            annotations=annotations,
            queue_name=queue_name,
            max_restarts=max_restarts,
        )
        if dry_run:
            return self.backend.render(spec, secrets)
        self.backend.create_job(spec, secrets)
        if wait:
            self.wait_for_job_conditions(name, namespace=spec.namespace, timeout=timeout)
        return name

    def get_job(self, name: str, namespace: str | None = None) -> Job:
        """The job's state: conditions, progress, times, output directory."""
        return self.backend.get_job(name, namespace or self.namespace)

    def list_jobs(self, namespace: str | None = None) -> list[Job]:
        """All jobs in the namespace, oldest first."""
        return self.backend.list_jobs(namespace or self.namespace)

    def get_job_conditions(
        self, name: str, namespace: str | None = None, job: Job | None = None
    ) -> list[Any]:
        """The job's conditions, oldest first."""
        return (job or self.get_job(name, namespace)).conditions

    def is_job_created(
        self, name: str, namespace: str | None = None, job: Job | None = None
    ) -> bool:
        return (job or self.get_job(name, namespace)).has_condition(conditions.CREATED)

    def is_job_running(
        self, name: str, namespace: str | None = None, job: Job | None = None
    ) -> bool:
        return (job or self.get_job(name, namespace)).has_condition(conditions.RUNNING)

    def is_job_restarting(
        self, name: str, namespace: str | None = None, job: Job | None = None
    ) -> bool:
        return (job or self.get_job(name, namespace)).has_condition(conditions.RESTARTING)

    def is_job_succeeded(
        self, name: str, namespace: str | None = None, job: Job | None = None
    ) -> bool:
        return (job or self.get_job(name, namespace)).has_condition(conditions.SUCCEEDED)

    def is_job_failed(
        self, name: str, namespace: str | None = None, job: Job | None = None
    ) -> bool:
        return (job or self.get_job(name, namespace)).has_condition(conditions.FAILED)

    def wait_for_job_conditions(
        self,
        name: str,
        namespace: str | None = None,
        expected_conditions: Iterable[str] = frozenset({conditions.SUCCEEDED}),
        timeout: float = 600,
        polling_interval: float = 1.0,
        callback: Any = None,
    ) -> Job:
        """Blocks until the job reaches one of `expected_conditions` and returns it.

        Raises RuntimeError at once when the job fails (unless Failed is expected), with the
        failure's reason, and TimeoutError after `timeout` seconds. `callback(job)` is called at
        every poll.
        """
        expected = set(expected_conditions)
        unknown = expected - set(conditions.CONDITION_TYPES)
        if unknown:
            raise ValueError(
                f"expected_conditions={sorted(unknown)}: allowed: {', '.join(conditions.CONDITION_TYPES)}"
            )
        deadline = time.monotonic() + timeout
        while True:
            job = self.get_job(name, namespace)
            if callback:
                callback(job)
            if any(job.has_condition(c) for c in expected):
                return job
            if job.status == conditions.FAILED:
                raise RuntimeError(f"job {job.namespace}/{name} failed: {job.message}")
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"job {job.namespace}/{name} did not reach {sorted(expected)} within {timeout:g} s "
                    f"(now {job.status})"
                )
            time.sleep(polling_interval)

    def get_job_logs(
        self, name: str, namespace: str | None = None, follow: bool = False
    ) -> Iterator[LogLine]:
        """The logs of the storage initializer and every worker, one `LogLine(source, line)` each.

        Without `follow` the iterator ends after what has been written so far; with `follow` it
        yields lines as they are written and ends when the job ends.
        """
        return self.backend.get_job_logs(name, namespace or self.namespace, follow)

    def delete_job(
        self, name: str, namespace: str | None = None, keep_outputs: bool = False
    ) -> None:
        """Stops every process of the job and removes its files or objects (outputs kept if asked)."""
        self.backend.delete_job(name, namespace or self.namespace, keep_outputs=keep_outputs)
