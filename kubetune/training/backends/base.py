"""The Backend interface: everything the client, the CLI and the dashboard ask of where jobs run."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubetune.contract.layout import OutputDir
from kubetune.contract.records import HistoryRecord
from kubetune.contract.spec import JobSpec, KubernetesExtras
from kubetune.training.constants import constants
from kubetune.training.job import JobReport, LogLine


@dataclass(frozen=True)
class PodSelector:
    """Which pods of a job, by the Training Operator's labels: the master only (`is_master`),
    one replica type ('master' or 'worker'), one replica index; all when nothing is set."""

    is_master: bool = False
    replica_type: str | None = None
    replica_index: int | None = None

    def labels(self, job_name: str) -> dict[str, str]:
        """The label selector of the chosen pods, as a mapping."""
        labels = {constants.JOB_NAME_LABEL: job_name}
        if self.is_master:
            labels[constants.JOB_ROLE_LABEL] = constants.JOB_ROLE_MASTER
        if self.replica_type is not None:
            labels[constants.REPLICA_TYPE_LABEL] = self.replica_type.lower()
        if self.replica_index is not None:
            labels[constants.REPLICA_INDEX_LABEL] = str(self.replica_index)
        return labels

    def matches(self, job_name: str, labels: Mapping[str, str]) -> bool:
        """Whether a pod with `labels` is one of the chosen pods of job `job_name`."""
        return all(labels.get(key) == value for key, value in self.labels(job_name).items())


ALL_PODS = PodSelector()


class Backend(ABC):
    """Runs jobs somewhere and reports on them. Implementations: local, kubernetes.

    `timeout` arguments are the seconds one request to the Kubernetes API server may take; the
    local backend reads files and has nothing to time out. Every method that names a job raises
    RuntimeError naming it when it does not exist.
    """

    name: str = "base"
    namespace: str = "default"
    # The kind of job objects: Training Operator V1's 'pytorchjob' or Trainer V2's 'trainjob'.
    api: str = "pytorchjob"
    # Whether the backend runs container images (`create_job(base_image=...)` without a function).
    runs_container_images: bool = False

    # --- create ----------------------------------------------------------------------------------

    @abstractmethod
    def create_job(self, spec: JobSpec, secrets: dict[str, str]) -> None:
        """Starts the job described by `spec`; `secrets` are environment variables, never
        written with it. Does not block.

        Raises:
            RuntimeError: a job of the same namespace/name exists, or the backend refused it.
            ValueError: the backend can never run the job (e.g. more than the machine has).
        """

    def render(self, spec: JobSpec, secrets: dict[str, str]) -> list[dict[str, Any]]:
        """The objects `create_job` would create, without creating anything (dry run).

        Raises:
            NotImplementedError: the backend has no dry run (the local backend).
        """
        raise NotImplementedError(
            f"the {self.name} backend has no dry run; use backend='kubernetes'"
        )

    def unsupported_settings(self, kubernetes: KubernetesExtras) -> list[str]:
        """Why this backend cannot take `kubernetes` (Kubernetes-only settings); [] when it can."""
        return []

    @abstractmethod
    def create_job_object(self, job: dict[str, Any], namespace: str) -> None:
        """Creates a job object given in API form (Kubeflow's `create_job(job=...)`).

        Raises:
            ValueError: the backend runs no job objects (local).
            RuntimeError: the API server refused it.
        """

    @abstractmethod
    def update_job_object(
        self, name: str, namespace: str, patch: dict[str, Any], timeout: float | None = None
    ) -> None:
        """Applies `patch` (a JSON merge patch) to the job object (Kubeflow's `update_job`).

        Raises:
            RuntimeError: the backend cannot change a job (local), or the API server refused.
        """

    # --- read ------------------------------------------------------------------------------------

    @abstractmethod
    def get_job(self, name: str, namespace: str) -> JobReport:
        """The job's report (conditions, progress, size, times, restarts, outputs)."""

    @abstractmethod
    def list_jobs(self, namespace: str | None) -> list[JobReport]:
        """The reports of kubetune's jobs in `namespace`, oldest first; with None, in every
        namespace the backend can see (on Kubernetes: the cluster, else its own namespace)."""

    def namespaces(self) -> list[str]:
        """The namespaces that hold kubetune's jobs, sorted."""
        return sorted({job.namespace for job in self.list_jobs(None)})

    @abstractmethod
    def get_job_spec(self, name: str, namespace: str) -> JobSpec | None:
        """The spec the job was created from; None where it cannot be read (a damaged job
        folder, a job kubetune did not create)."""

    @abstractmethod
    def get_job_object(
        self, name: str, namespace: str, timeout: float | None = None
    ) -> dict[str, Any]:
        """The job object in API form (a PyTorchJob, or a TrainJob with api='trainjob')."""

    @abstractmethod
    def list_job_objects(
        self, namespace: str, timeout: float | None = None
    ) -> list[dict[str, Any]]:
        """Every job object of the backend's kind in `namespace`, in API form."""

    def job_resources(self, name: str, namespace: str) -> list[dict[str, Any]]:
        """The API objects the job consists of, as far as they can be read (on Kubernetes: the
        job, its ConfigMap, PersistentVolumeClaim and Secret); [] where there are none."""
        return []

    @abstractmethod
    def list_pods(
        self,
        name: str,
        namespace: str,
        selector: PodSelector = ALL_PODS,
        timeout: float | None = None,
    ) -> list[dict[str, Any]]:
        """The job's pods that `selector` chooses, in API form."""

    @abstractmethod
    def log_sources(self, name: str, namespace: str) -> list[str]:
        """The sources of the job's log lines so far, in the order `get_job_logs` gives them."""

    @abstractmethod
    def get_job_logs(
        self,
        name: str,
        namespace: str,
        follow: bool,
        selector: PodSelector = ALL_PODS,
        on_poll: Callable[[], None] | None = None,
        tail_lines: int | None = None,
    ) -> Iterator[LogLine]:
        """The log lines of the chosen pods' containers (initializer first).

        Args:
            follow: go on as lines are written, until the job ends.
            on_poll: called at every polling round while following (e.g. to redraw progress).
            tail_lines: only the last lines of each source written so far.
        """

    def pod_of(self, job_name: str, source: str) -> str:
        """The pod a log line's source belongs to (Kubernetes sources are 'pod/container')."""
        return source.partition("/")[0]

    @abstractmethod
    def job_events(
        self, name: str, namespace: str, pods: list[str], timeout: float | None = None
    ) -> dict[str, list[str]]:
        """The events of the job and of `pods`, as Kubeflow's `get_job_logs(verbose=True)` lists
        them: {'<kind>/<name>': ['<YYYY-mm-dd HH:MM:SS> <message>', ...]}."""

    @abstractmethod
    def job_history(self, name: str, namespace: str) -> list[HistoryRecord]:
        """Every record the runtime logged (step, epoch, time, loss, eval_*, ...) in order,
        including those a restarted run logged again."""

    def local_outputs(self, name: str, namespace: str) -> OutputDir | None:
        """The job's output directory when it lies on this machine; None when it does not (on
        Kubernetes it is inside the job's volume)."""
        return None

    def kept_outputs_path(self, name: str, namespace: str) -> Path | None:
        """Where `delete_job(keep_outputs=True)` leaves the outputs on this machine; None when
        nothing would move (or they stay in the cluster)."""
        return None

    def kept_outputs(self, name: str, namespace: str) -> list[OutputDir]:
        """The outputs `delete_job(keep_outputs=True)` moved aside for deleted jobs named `name`
        on this machine, newest first; [] where there are none (on Kubernetes they stay in the
        job's volume)."""
        return []

    # --- delete ----------------------------------------------------------------------------------

    @abstractmethod
    def delete_job(
        self,
        name: str,
        namespace: str,
        keep_outputs: bool = False,
        delete_options: dict[str, Any] | None = None,
    ) -> None:
        """Stops every process of the job and removes what it created (outputs kept if asked);
        `delete_options` (a V1DeleteOptions in API form) is the deletion's body on Kubernetes."""
