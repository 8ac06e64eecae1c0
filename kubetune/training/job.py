"""What a backend reports about a job: its conditions, progress, times and where outputs are.

`TrainingClient.get_job_report` returns a `JobReport`: kubetune's own view of a job, with the
extras that Kubeflow's `KubeflowOrgV1PyTorchJob` (what `get_job` returns) has no field for.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

# Condition types, as in Kubeflow Training Operator V1.
CREATED = "Created"
RUNNING = "Running"
RESTARTING = "Restarting"
SUCCEEDED = "Succeeded"
FAILED = "Failed"
SUSPENDED = "Suspended"
CONDITION_TYPES = (CREATED, RUNNING, RESTARTING, SUCCEEDED, FAILED, SUSPENDED)
TERMINAL = (SUCCEEDED, FAILED)


@dataclass
class JobCondition:
    """One condition of a job; `status` is 'True' or 'False' as in Kubernetes."""

    type: str
    status: str = "True"
    reason: str = ""
    message: str = ""
    last_transition_time: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "status": self.status,
            "reason": self.reason,
            "message": self.message,
            "last_transition_time": self.last_transition_time,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobCondition:
        return cls(
            type=data["type"],
            status=data.get("status", "True"),
            reason=data.get("reason", ""),
            message=data.get("message", ""),
            last_transition_time=data.get("last_transition_time"),
        )


@dataclass
class JobReport:
    """A job as a backend sees it: `TrainingClient.get_job_report(name)`.

    `progress` holds the trainer's latest report (step, total_steps, epoch, loss, learning_rate,
    samples_per_second, eta_seconds, status) or None before training starts; `restarts` counts
    the worker group's restarts (on Kubernetes: the most of any pod's trainer container).
    `output_dir` is where the final model, metrics.json and loss_curve.png are written (a path
    on this machine for the local backend, a path inside the job's volume on Kubernetes).
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

    @property
    def status(self) -> str:
        """The type of the latest true condition ('Created' when none is true)."""
        true = [c for c in self.conditions if c.status == "True"]
        return true[-1].type if true else CREATED

    @property
    def message(self) -> str:
        """The message of the latest true condition."""
        true = [c for c in self.conditions if c.status == "True"]
        return true[-1].message if true else ""

    def has_condition(self, condition_type: str) -> bool:
        """Whether the latest true condition is `condition_type` (Created holds for every job)."""
        return condition_type == CREATED or self.status == condition_type

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "namespace": self.namespace,
            "backend": self.backend,
            "status": self.status,
            "conditions": [c.to_dict() for c in self.conditions],
            "progress": self.progress,
            "creation_time": self.creation_time,
            "start_time": self.start_time,
            "completion_time": self.completion_time,
            "output_dir": self.output_dir,
            "restarts": self.restarts,
        }


# The name this class had before `get_job` returned Kubeflow's job objects.
Job = JobReport


class LogLine(NamedTuple):
    """One line of a job's logs, attributed to the process or pod that wrote it."""

    source: str
    line: str

    def __str__(self) -> str:
        return f"[{self.source}] {self.line}"
