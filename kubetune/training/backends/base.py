"""The Backend interface that TrainingClient delegates to."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Any

from kubetune.training.job import Job, LogLine
from kubetune.training.spec import JobSpec


class Backend(ABC):
    """Runs jobs somewhere and reports on them. Implementations: local, kubernetes."""

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
    def get_job(self, name: str, namespace: str) -> Job:
        """The job's current state; raises RuntimeError naming the job when it does not exist."""

    @abstractmethod
    def list_jobs(self, namespace: str) -> list[Job]:
        """All jobs in `namespace`, oldest first."""

    @abstractmethod
    def get_job_logs(self, name: str, namespace: str, follow: bool) -> Iterator[LogLine]:
        """The logs of the initializer and every worker; with `follow`, until the job ends."""

    @abstractmethod
    def delete_job(self, name: str, namespace: str, keep_outputs: bool = False) -> None:
        """Stops every process of the job and removes what it created (outputs kept if asked)."""
