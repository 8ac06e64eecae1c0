"""A local job as the Kubeflow Training Operator would show it: a PyTorchJob and its pods.

Worker (simulated node) `i` of a local job is the pod the operator creates for node rank `i` of
the PyTorchJob that kubetune renders (1 Master + `num_workers - 1` Workers): `<job>-master-0`
for worker 0, `<job>-worker-<i-1>` for the others, with the operator's `training.kubeflow.org/*`
labels, a phase and a start time. The storage initializer (or a function job's package step)
is the master pod's init container, so its lines belong to the master pod. The log files keep
their names (logs/initializer.log, logs/worker-N.log); this module maps them to pods.

Everything here is a pure function of the job's spec and status, in Kubernetes API form (dicts
with camelCase keys), the same form the Kubernetes backend reads from the API server.
"""

from __future__ import annotations

import json
from datetime import datetime
from enum import StrEnum
from typing import Any

from kubetune.contract.conditions import Condition
from kubetune.contract.spec import JobSpec
from kubetune.training.backends.kubernetes import manifests
from kubetune.training.backends.local.jobdir import INITIALIZER, JobStatus, worker_source
from kubetune.training.constants import constants
from kubetune.training.images import resolve_images

MASTER, WORKER = constants.REPLICA_TYPE_MASTER, constants.REPLICA_TYPE_WORKER
OPERATOR_NAME = "pytorchjob-controller"
# The port the operator gives the master (PyTorchJob's default); locally each attempt picks a
# free port instead, and the environment says which.
DEFAULT_MASTER_PORT = 23456


def replica(node_rank: int) -> tuple[str, int]:
    """(replica type, replica index) of node rank `node_rank`: Master 0, then Worker 0, 1, ..."""
    return (MASTER, 0) if node_rank == 0 else (WORKER, node_rank - 1)


def pod_name(job_name: str, node_rank: int) -> str:
    """The pod name of node rank `node_rank`, as the operator names it: `<job>-master-0`, `<job>-worker-0`, ..."""
    replica_type, index = replica(node_rank)
    return f"{job_name}-{replica_type.lower()}-{index}"


def source_node_rank(source: str) -> int:
    """The node rank whose pod a log source belongs to ('initializer' is the master's init container)."""
    if source == INITIALIZER:
        return 0
    return int(source.rsplit("-", 1)[1])


def pod_of_source(job_name: str, source: str) -> str:
    """The pod name of a log source: 'initializer' and 'worker-0' -> `<job>-master-0`, 'worker-2' -> `<job>-worker-1`."""
    return pod_name(job_name, source_node_rank(source))


def pod_labels(job_name: str, node_rank: int) -> dict[str, str]:
    """The labels the operator puts on the pod of node rank `node_rank`."""
    replica_type, index = replica(node_rank)
    labels = {
        constants.OPERATOR_NAME_LABEL: OPERATOR_NAME,
        constants.JOB_NAME_LABEL: job_name,
        constants.REPLICA_TYPE_LABEL: replica_type.lower(),
        constants.REPLICA_INDEX_LABEL: str(index),
    }
    if replica_type == MASTER:
        labels[constants.JOB_ROLE_LABEL] = constants.JOB_ROLE_MASTER
    return labels


def operator_env(
    num_workers: int, node_rank: int, procs_per_worker: int | str, master_port: int
) -> dict[str, str]:
    """The environment the operator gives the training container of node rank `node_rank` of a
    PyTorchJob with a Master: rendezvous address and port (plain and PET_* for torchrun), the
    node's rank, the node count, processes per node and WORLD_SIZE (nodes x processes)."""
    address = "127.0.0.1"
    per_node = procs_per_worker if isinstance(procs_per_worker, int) else 1
    return {
        "PYTHONUNBUFFERED": "1",
        "MASTER_ADDR": address,
        "PET_MASTER_ADDR": address,
        "MASTER_PORT": str(master_port),
        "PET_MASTER_PORT": str(master_port),
        "WORLD_SIZE": str(num_workers * per_node),
        "RANK": str(node_rank),
        "PET_NODE_RANK": str(node_rank),
        "PET_NNODES": str(num_workers),
        "PET_NPROC_PER_NODE": str(procs_per_worker),
    }


class PodPhase(StrEnum):
    """A pod's phase, as Kubernetes names it."""

    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


def pod_phase(status: JobStatus, node_rank: int) -> PodPhase:
    """Pending (not started yet, or in its init container), Running, Succeeded or Failed."""
    if status.current == Condition.SUCCEEDED:
        return PodPhase.SUCCEEDED
    record = status.workers.get(worker_source(node_rank))
    if record is None:
        return PodPhase.FAILED if status.terminal else PodPhase.PENDING
    if record.exit_code is None:
        return PodPhase.FAILED if status.terminal else PodPhase.RUNNING
    return PodPhase.SUCCEEDED if record.exit_code == 0 else PodPhase.FAILED


def _pod_start_time(status: JobStatus, node_rank: int) -> str | None:
    if worker_source(node_rank) in status.workers and status.attempts:
        return status.attempts[-1].start_time or status.start_time
    if node_rank == 0 and status.initializer is not None:
        return status.start_time
    return None


def rendered_job(spec: JobSpec) -> dict[str, Any]:
    """The PyTorchJob kubetune would create for `spec` on Kubernetes (secrets left out)."""
    images = resolve_images(gpu=spec.requests_gpus)
    return manifests.build_pytorchjob(spec, images, secret_keys=[])


def pods(spec: JobSpec, status: JobStatus) -> list[dict[str, Any]]:
    """The job's pods in API form, master first; each with its replica's pod template spec."""
    rendered = rendered_job(spec)["spec"]["pytorchReplicaSpecs"]
    found = []
    for node_rank in range(spec.num_workers):
        replica_type, _ = replica(node_rank)
        template = rendered[replica_type]["template"]
        metadata: dict[str, Any] = {
            "name": pod_name(spec.name, node_rank),
            "namespace": spec.namespace,
            "uid": f"{status.uid}-{node_rank}",
            "creationTimestamp": status.creation_time,
            "labels": {
                **template["metadata"].get("labels", {}),
                **pod_labels(spec.name, node_rank),
            },
        }
        if template["metadata"].get("annotations"):
            metadata["annotations"] = dict(template["metadata"]["annotations"])
        pod_status: dict[str, Any] = {"phase": str(pod_phase(status, node_rank))}
        start = _pod_start_time(status, node_rank)
        if start:
            pod_status["startTime"] = start
        found.append(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": metadata,
                "spec": template["spec"],
                "status": pod_status,
            }
        )
    return found


def job_object(
    spec: JobSpec | None,
    status: JobStatus,
    progress: dict[str, Any] | None,
    queue_position: int | None = None,
) -> dict[str, Any]:
    """The job as a PyTorchJob in API form: the rendered object, with the local status
    (conditions, times, replica statuses) and kubetune's extras as annotations (the local output
    directory, progress as JSON, restarts, the queue position while queued). Without a spec (a
    damaged job folder), a PyTorchJob with its name and status only."""
    job = rendered_job(spec) if spec is not None else _bare_job(status)
    metadata = job["metadata"]
    annotations = dict(metadata.get("annotations") or {})
    annotations[constants.BACKEND_ANNOTATION] = "local"
    annotations[constants.OUTPUT_DIR_ANNOTATION] = status.output_dir
    annotations[constants.RESTARTS_ANNOTATION] = str(status.restarts)
    if progress is not None:
        annotations[constants.PROGRESS_ANNOTATION] = json.dumps(progress, sort_keys=True)
    if queue_position is not None:
        annotations[constants.QUEUE_POSITION_ANNOTATION] = str(queue_position)
    metadata.update(uid=status.uid, creationTimestamp=status.creation_time, annotations=annotations)
    job["status"] = {
        "conditions": [
            {
                "type": c.type,
                "status": c.status,
                "reason": c.reason,
                "message": c.message,
                "lastTransitionTime": c.last_transition_time,
                "lastUpdateTime": c.last_transition_time,
            }
            for c in status.conditions
        ],
        "replicaStatuses": replica_statuses(spec, status),
    }
    if status.start_time:
        job["status"]["startTime"] = status.start_time
    if status.completion_time:
        job["status"]["completionTime"] = status.completion_time
    return job


def _bare_job(status: JobStatus) -> dict[str, Any]:
    return {
        "apiVersion": constants.API_VERSION,
        "kind": constants.PYTORCHJOB_KIND,
        "metadata": {"name": status.name, "namespace": status.namespace},
        "spec": {"pytorchReplicaSpecs": {}},
    }


def replica_statuses(spec: JobSpec | None, status: JobStatus) -> dict[str, dict[str, int]]:
    """Active, succeeded and failed pods per replica type (zero counts left out, as the operator does)."""
    counts: dict[str, dict[str, int]] = {MASTER: {}}
    if status.num_workers > 1:
        counts[WORKER] = {}
    key = {PodPhase.RUNNING: "active", PodPhase.SUCCEEDED: "succeeded", PodPhase.FAILED: "failed"}
    for node_rank in range(status.num_workers):
        phase = pod_phase(status, node_rank)
        if phase in key:
            replica_counts = counts[replica(node_rank)[0]]
            replica_counts[key[phase]] = replica_counts.get(key[phase], 0) + 1
    return counts


def events(spec: JobSpec, status: JobStatus) -> dict[str, list[str]]:
    """The job's condition changes as Kubeflow's `get_job_logs(verbose=True)` lists events:
    {'pytorchjob/<name>': ['<YYYY-mm-dd HH:MM:SS> <message>', ...]}."""
    lines = []
    for c in sorted(status.conditions, key=lambda c: c.last_transition_time or ""):
        when = c.last_transition_time
        stamp = (
            datetime.fromisoformat(when.replace("Z", "+00:00")).strftime("%Y-%m-%d %H:%M:%S")
            if when
            else ""
        )
        lines.append(f"{stamp} {c.message or c.reason or c.type}".strip())
    return {f"{constants.PYTORCHJOB_KIND.lower()}/{spec.name}": lines} if lines else {}
