"""The Backend interface that TrainingClient delegates to."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from kubetune.training.constants import constants
from kubetune.training.job import JobReport, LogLine
from kubetune.training.spec import JobSpec


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
    local backend reads files and has nothing to time out.
    """

    name: str = "base"
    namespace: str = "default"

    @abstractmethod
    def create_job(self, spec: JobSpec, secrets: dict[str, str]) -> None:
        """Starts the job described by `spec`; `secrets` are environment variables, never written with it.

        Raises RuntimeError if a job with the same namespace/name exists. Does not block.
        """

    def render(self, spec: JobSpec, secrets: dict[str, str]) -> list[dict[str, Any]]:
        """The objects `create_job` would create, without creating anything (dry run)."""
        raise NotImplementedError(
            f"the {self.name} backend has no dry run; use backend='kubernetes'"
        )

    @abstractmethod
    def create_job_object(self, job: dict[str, Any], namespace: str) -> None:
        """Creates a job object given in API form (Kubeflow's `create_job(job=...)`)."""

    @abstractmethod
    def update_job_object(
        self, name: str, namespace: str, patch: dict[str, Any], timeout: float | None = None
    ) -> None:
        """Applies `patch` (a JSON merge patch) to the job object (Kubeflow's `update_job`)."""

    @abstractmethod
    def get_job(self, name: str, namespace: str) -> JobReport:
        """The job's report; raises RuntimeError naming the job when it does not exist."""

    @abstractmethod
    def list_jobs(self, namespace: str) -> list[JobReport]:
        """The reports of kubetune's jobs in `namespace`, oldest first."""

    @abstractmethod
    def get_job_object(
        self, name: str, namespace: str, timeout: float | None = None
    ) -> dict[str, Any]:
        """The job object in API form (a PyTorchJob, or a TrainJob with api='trainjob');
        raises RuntimeError naming the job when it does not exist."""

    @abstractmethod
    def list_job_objects(
        self, namespace: str, timeout: float | None = None
    ) -> list[dict[str, Any]]:
        """Every job object of the backend's kind in `namespace`, in API form."""

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
    def get_job_logs(
        self, name: str, namespace: str, follow: bool, selector: PodSelector = ALL_PODS
    ) -> Iterator[LogLine]:
        """The log lines of the chosen pods' containers (initializer first); with `follow`, as
        they are written, until the job ends."""

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
    def delete_job(
        self,
        name: str,
        namespace: str,
        keep_outputs: bool = False,
        delete_options: dict[str, Any] | None = None,
    ) -> None:
        """Stops every process of the job and removes what it created (outputs kept if asked);
        `delete_options` (a V1DeleteOptions in API form) is the deletion's body on Kubernetes."""
