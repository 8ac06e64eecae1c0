"""Pure mapping of a PyTorchJob's or TrainJob's status (and its pods') to kubetune's `JobReport`."""

from __future__ import annotations

from typing import Any

from kubetune.training import job as conditions
from kubetune.training.backends.kubernetes.logs import started_containers
from kubetune.training.backends.kubernetes.manifests import (
    OUTPUT_DIR_ANNOTATION,
    PYTORCH_CONTAINER,
    TRAINJOB_CONTAINER,
)
from kubetune.training.job import JobCondition, JobReport

BACKEND = "kubernetes"
TRAINER_CONTAINERS = (PYTORCH_CONTAINER, TRAINJOB_CONTAINER)

# TrainJob condition types -> kubetune's (Kubeflow V1) condition types.
_TRAINJOB_CONDITIONS = {
    "Complete": conditions.SUCCEEDED,
    "Failed": conditions.FAILED,
    "Suspended": conditions.SUSPENDED,
    "Created": conditions.CREATED,
}


def _condition(raw: dict[str, Any], type_: str) -> JobCondition:
    return JobCondition(
        type=type_,
        status=str(raw.get("status", "True")),
        reason=raw.get("reason") or "",
        message=raw.get("message") or "",
        last_transition_time=raw.get("lastTransitionTime"),
    )


def _base(obj: dict[str, Any]) -> JobReport:
    metadata = obj.get("metadata") or {}
    return JobReport(
        name=metadata.get("name", ""),
        namespace=metadata.get("namespace", ""),
        backend=BACKEND,
        creation_time=metadata.get("creationTimestamp"),
        output_dir=(metadata.get("annotations") or {}).get(OUTPUT_DIR_ANNOTATION),
    )


def job_from_pytorchjob(obj: dict[str, Any]) -> JobReport:
    """A Job from a PyTorchJob: its conditions carry the same names as kubetune's."""
    job = _base(obj)
    status = obj.get("status") or {}
    job.conditions = [
        _condition(c, c["type"])
        for c in status.get("conditions") or []
        if c.get("type") in conditions.CONDITION_TYPES
    ]
    job.start_time = status.get("startTime")
    job.completion_time = status.get("completionTime")
    return job


def job_from_trainjob(obj: dict[str, Any]) -> JobReport:
    """A Job from a TrainJob: Complete -> Succeeded; Running when a child job is active and the
    TrainJob has not ended; progress from `status.trainerStatus` when the runtime reports it."""
    job = _base(obj)
    status = obj.get("status") or {}
    mapped = [
        _condition(c, _TRAINJOB_CONDITIONS[c["type"]])
        for c in status.get("conditions") or []
        if c.get("type") in _TRAINJOB_CONDITIONS
    ]
    ended = any(c.status == "True" and c.type in conditions.TERMINAL for c in mapped)
    suspended = any(c.status == "True" and c.type == conditions.SUSPENDED for c in mapped)
    active = any(
        (s.get("active") or 0) + (s.get("ready") or 0) > 0 for s in status.get("jobsStatus") or []
    )
    if active and not ended and not suspended:
        mapped.append(JobCondition(type=conditions.RUNNING, reason="JobsActive"))
    job.conditions = mapped
    trainer_status = status.get("trainerStatus")
    if trainer_status:
        job.progress = {
            "progress_percentage": trainer_status.get("progressPercentage"),
            "eta_seconds": trainer_status.get("estimatedRemainingSeconds"),
            "updated_at": trainer_status.get("lastUpdatedTime"),
            **{m["name"]: m["value"] for m in trainer_status.get("metrics") or []},
        }
    terminal = [c for c in mapped if c.type in conditions.TERMINAL and c.status == "True"]
    if terminal:
        job.completion_time = terminal[-1].last_transition_time
    return job


def job_from_object(obj: dict[str, Any]) -> JobReport:
    """A Job from either kind of job object."""
    if obj.get("kind") == "TrainJob":
        return job_from_trainjob(obj)
    return job_from_pytorchjob(obj)


def trainer_restarts(pods: list[dict[str, Any]]) -> int:
    """The most restarts of any pod's trainer container (replicas restart `OnFailure`)."""
    return max(
        (
            count
            for _, container, count in started_containers(pods)
            if container in TRAINER_CONTAINERS
        ),
        default=0,
    )


def progress_sources(pods: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(pod, container) of every started trainer container, by pod name: the logs to search for
    the progress records that the trainer's rank 0 prints. Node rank 0's pod comes first in that
    order (PyTorchJob `NAME-master-0` before `NAME-worker-N`; TrainJob `NAME-node-0-0-…`)."""
    return [(pod, c) for pod, c, _ in started_containers(pods) if c in TRAINER_CONTAINERS]
