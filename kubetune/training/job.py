"""What a backend reports about a job: its conditions, progress, size, times and where outputs are.

`TrainingClient.get_job_report` returns a `JobReport`: kubetune's own view of a job, with the
extras that Kubeflow's `KubeflowOrgV1PyTorchJob` (what `get_job` returns) has no field for.
Conditions and the rule for the latest one are the contract's (`kubetune.contract.conditions`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

from kubetune.contract import conditions
from kubetune.contract.conditions import Condition, JobCondition
from kubetune.contract.records import ProgressRecord

__all__ = ["Job", "JobCondition", "JobReport", "LogLine", "QueuePlace"]


@dataclass(frozen=True)
class QueuePlace:
    """Where a job waits in the local queue: `position` 1 is next, of `waiting` jobs."""

    position: int
    waiting: int


@dataclass
class JobReport:
    """A job as a backend sees it: `TrainingClient.get_job_report(name)`.

    `progress` holds the runtime's latest report as it wrote it (step, total_steps, epoch, loss,
    learning_rate, samples_per_second, eta_seconds, status; `progress_record` reads it typed), or
    None before training starts; `restarts` counts the worker group's restarts (on Kubernetes:
    the most of any pod's trainer container). `output_dir` is where the final model,
    metrics.json and loss_curve.png are written (a path on this machine for the local backend, a
    path inside the job's volume on Kubernetes). `num_workers` and `num_procs_per_worker` give
    the job's size where known; `queue` its place while it waits in the local queue.
    """

    name: str
    namespace: str
    backend: str
    conditions: list[JobCondition] = field(default_factory=list)
    progress: dict[str, Any] | None = None
    creation_time: str | None = None
    start_time: str | None = None
    completion_time: str | None = None
    output_dir: str | None = None
    restarts: int = 0
    num_workers: int | None = None
    num_procs_per_worker: int | str | None = None
    queue: QueuePlace | None = None

    @property
    def status(self) -> Condition:
        """The type of the latest true condition ('Created' when none is true)."""
        return conditions.current(self.conditions)

    @property
    def message(self) -> str:
        """The message of the latest true condition ('' when none is true)."""
        latest = conditions.latest(self.conditions)
        return latest.message if latest is not None else ""

    @property
    def reason(self) -> str:
        """The reason of the latest true condition ('' when none is true)."""
        latest = conditions.latest(self.conditions)
        return latest.reason if latest is not None else ""

    @property
    def ended(self) -> bool:
        """Whether the job has ended (Succeeded or Failed)."""
        return conditions.has_ended(self.conditions)

    @property
    def progress_record(self) -> ProgressRecord | None:
        """`progress` read as the runtime's typed record; None before it reported, or when
        `progress` is another's (a TrainJob's trainer status has no step)."""
        if self.progress is None or "step" not in self.progress:
            return None
        return ProgressRecord.from_dict(self.progress)

    def has_condition(self, condition_type: str) -> bool:
        """Whether the latest true condition is `condition_type` (Created holds for every job)."""
        return condition_type == Condition.CREATED or self.status == condition_type

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON data (`kubetune status --json`)."""
        return {
            "name": self.name,
            "namespace": self.namespace,
            "backend": self.backend,
            "status": str(self.status),
            "conditions": [c.to_dict() for c in self.conditions],
            "progress": self.progress,
            "creation_time": self.creation_time,
            "start_time": self.start_time,
            "completion_time": self.completion_time,
            "output_dir": self.output_dir,
            "restarts": self.restarts,
            "num_workers": self.num_workers,
            "num_procs_per_worker": self.num_procs_per_worker,
            "queue": None
            if self.queue is None
            else {"position": self.queue.position, "waiting": self.queue.waiting},
        }


# The name this class had before `get_job` returned Kubeflow's job objects.
Job = JobReport


class LogLine(NamedTuple):
    """One line of a job's logs, attributed to the process or pod that wrote it."""

    source: str
    line: str

    def __str__(self) -> str:
        return f"[{self.source}] {self.line}"
