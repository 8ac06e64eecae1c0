"""Pure mapping of a PyTorchJob's or TrainJob's status (and its pods') to kubetune's `JobReport`."""

from __future__ import annotations

from typing import Any

from kubetune.contract.conditions import TERMINAL, TRUE, Condition, JobCondition, has_ended
from kubetune.training.backends.kubernetes.logs import started_containers
from kubetune.training.backends.kubernetes.manifests import (
    OUTPUT_DIR_ANNOTATION,
    PYTORCH_CONTAINER,
    TRAINJOB_CONTAINER,
)
from kubetune.training.job import JobReport

BACKEND = "kubernetes"
TRAINER_CONTAINERS = (PYTORCH_CONTAINER, TRAINJOB_CONTAINER)

# TrainJob condition types -> kubetune's (Kubeflow V1) condition types.
_TRAINJOB_CONDITIONS = {
    "Complete": Condition.SUCCEEDED,
    "Failed": Condition.FAILED,
    "Suspended": Condition.SUSPENDED,
    "Created": Condition.CREATED,
}


def _condition(raw: dict[str, Any], type_: Condition) -> JobCondition:
    return JobCondition(
        type=type_,
        status=str(raw.get("status", TRUE)),
        reason=raw.get("reason") or "",
        message=raw.get("message") or "",
        last_transition_time=raw.get("lastTransitionTime"),
    )


def _base(obj: dict[str, Any]) -> JobReport:
    metadata = obj.get("metadata") or {}
    workers, procs = job_size(obj)
    return JobReport(
        name=metadata.get("name", ""),
        namespace=metadata.get("namespace", ""),
        backend=BACKEND,
        creation_time=metadata.get("creationTimestamp"),
        output_dir=(metadata.get("annotations") or {}).get(OUTPUT_DIR_ANNOTATION),
        num_workers=workers,
        num_procs_per_worker=procs,
    )


def job_size(obj: dict[str, Any]) -> tuple[int | None, int | str | None]:
    """(workers, processes per worker) of a PyTorchJob or TrainJob; None where not given."""
    spec = obj.get("spec") or {}
    if obj.get("kind") == "TrainJob":
        trainer = spec.get("trainer") or {}
        return trainer.get("numNodes"), trainer.get("numProcPerNode")
    replicas = spec.get("pytorchReplicaSpecs") or {}
    workers = sum(int(r.get("replicas") or 0) for r in replicas.values()) or None
    procs = spec.get("nprocPerNode")
    return workers, int(procs) if isinstance(procs, str) and procs.isdigit() else procs


def job_from_pytorchjob(obj: dict[str, Any]) -> JobReport:
    """A report from a PyTorchJob: its conditions carry the same names as kubetune's."""
    job = _base(obj)
    status = obj.get("status") or {}
    job.conditions = [
        _condition(c, Condition(c["type"]))
        for c in status.get("conditions") or []
        if c.get("type") in {t.value for t in Condition}
    ]
    job.start_time = status.get("startTime")
    job.completion_time = status.get("completionTime")
    return job


def job_from_trainjob(obj: dict[str, Any]) -> JobReport:
    """A report from a TrainJob: Complete -> Succeeded; Running when a child job is active and the
    TrainJob has not ended; progress from `status.trainerStatus` when the runtime reports it."""
    job = _base(obj)
    status = obj.get("status") or {}
    mapped = [
        _condition(c, _TRAINJOB_CONDITIONS[c["type"]])
        for c in status.get("conditions") or []
        if c.get("type") in _TRAINJOB_CONDITIONS
    ]
    ended = has_ended(mapped)
    suspended = any(c.holds and c.type == Condition.SUSPENDED for c in mapped)
    active = any(
        (s.get("active") or 0) + (s.get("ready") or 0) > 0 for s in status.get("jobsStatus") or []
    )
    if active and not ended and not suspended:
        mapped.append(JobCondition(type=Condition.RUNNING, reason="JobsActive"))
    job.conditions = mapped
    trainer_status = status.get("trainerStatus")
    if trainer_status:
        job.progress = {
            "progress_percentage": trainer_status.get("progressPercentage"),
            "eta_seconds": trainer_status.get("estimatedRemainingSeconds"),
            "updated_at": trainer_status.get("lastUpdatedTime"),
            **{m["name"]: m["value"] for m in trainer_status.get("metrics") or []},
        }
    terminal = [c for c in mapped if c.type in TERMINAL and c.holds]
    if terminal:
        job.completion_time = terminal[-1].last_transition_time
    return job


def job_from_object(obj: dict[str, Any]) -> JobReport:
    """A report from either kind of job object."""
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
