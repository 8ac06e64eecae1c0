"""A local experiment as Katib shows one: the Experiment and its Trials in API form.

The Experiment is the one kubetune would create on Kubernetes for the same `tune()` call (its
spec, trial template included) with the local status: Katib's conditions, trial counts and
lists, and the current optimal trial. Each Trial carries its parameter assignments, conditions
and observation (min, max and latest of each metric), and kubetune's annotations: where its
outputs are and whether its job was kept.
"""

from __future__ import annotations

from typing import Any

from kubetune.katib.backends.local.store import ExperimentRecord, TrialRecord, TrialState
from kubetune.katib.constants import constants
from kubetune.katib.report import JOB_ANNOTATION
from kubetune.training.backends.kubernetes.manifests import OUTPUT_DIR_ANNOTATION

# status counter and list of each trial state (Katib's field names)
_COUNTERS = {
    TrialState.SUCCEEDED: ("trialsSucceeded", "succeededTrialList"),
    TrialState.FAILED: ("trialsFailed", "failedTrialList"),
    TrialState.KILLED: ("trialsKilled", "killedTrialList"),
    TrialState.EARLY_STOPPED: ("trialsEarlyStopped", "earlyStoppedTrialList"),
    TrialState.METRICS_UNAVAILABLE: ("trialMetricsUnavailable", "metricsUnavailableTrialList"),
    TrialState.RUNNING: ("trialsRunning", "runningTrialList"),
    TrialState.CREATED: ("trialsPending", "pendingTrialList"),
}


def experiment_object(
    experiment: dict[str, Any], record: ExperimentRecord | None
) -> dict[str, Any]:
    """The Experiment (as created) with its status from the record."""
    obj = {**experiment, "metadata": dict(experiment["metadata"])}
    if record is None:
        return obj
    obj["metadata"]["uid"] = record.uid
    obj["metadata"]["creationTimestamp"] = record.creation_time
    status: dict[str, Any] = {
        "conditions": [
            api_condition(c.type, c.status, c.reason, c.message, c.last_transition_time)
            for c in record.conditions
        ]
    }
    if record.start_time:
        status["startTime"] = record.start_time
    if record.completion_time:
        status["completionTime"] = record.completion_time
    status["trials"] = len(record.trials)
    for state, (counter, listing) in _COUNTERS.items():
        names = [t.name for t in record.trials if t.status == state]
        status[counter] = len(names)
        if names:
            status[listing] = names
    best = record.trial(record.best_trial) if record.best_trial else None
    if best is not None:
        status["currentOptimalTrial"] = {
            "bestTrialName": best.name,
            "parameterAssignments": _assignments(best),
            "observation": {"metrics": [dict(m) for m in best.metrics]},
        }
    obj["status"] = status
    return obj


def _assignments(trial: TrialRecord) -> list[dict[str, str]]:
    return [{"name": k, "value": v} for k, v in trial.assignments.items()]


def trial_object(
    experiment: dict[str, Any], record: ExperimentRecord, trial: TrialRecord
) -> dict[str, Any]:
    """One Trial in API form."""
    spec = experiment["spec"]
    template = spec.get("trialTemplate") or {}
    metadata: dict[str, Any] = {
        "name": trial.name,
        "namespace": record.namespace,
        "creationTimestamp": trial.creation_time,
        "labels": {constants.EXPERIMENT_LABEL: record.name},
        "annotations": {JOB_ANNOTATION: "kept" if trial.job_kept else "removed"},
        "ownerReferences": [
            {
                "apiVersion": constants.API_VERSION,
                "kind": constants.EXPERIMENT_KIND,
                "name": record.name,
                "uid": record.uid,
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ],
    }
    if trial.output_dir:
        metadata["annotations"][OUTPUT_DIR_ANNOTATION] = trial.output_dir
    status: dict[str, Any] = {"conditions": _trial_conditions(trial)}
    if trial.start_time:
        status["startTime"] = trial.start_time
    if trial.completion_time:
        status["completionTime"] = trial.completion_time
    if trial.metrics:
        status["observation"] = {"metrics": [dict(m) for m in trial.metrics]}
    return {
        "apiVersion": constants.API_VERSION,
        "kind": constants.TRIAL_KIND,
        "metadata": metadata,
        "spec": {
            "objective": spec.get("objective"),
            "parameterAssignments": _assignments(trial),
            "primaryContainerName": template.get("primaryContainerName"),
            "primaryPodLabels": template.get("primaryPodLabels"),
            "successCondition": template.get("successCondition"),
            "failureCondition": template.get("failureCondition"),
            "metricsCollector": spec.get("metricsCollectorSpec"),
            "retainRun": bool(template.get("retain")),
        },
        "status": status,
    }


def api_condition(
    kind: str, status: str, reason: str, message: str, when: str | None
) -> dict[str, Any]:
    """A condition of an Experiment or Trial in API form (Katib's fields)."""
    return {
        "type": str(kind),
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": when,
        "lastUpdateTime": when,
    }


def _trial_conditions(trial: TrialRecord) -> list[dict[str, Any]]:
    condition = api_condition
    found = [
        condition(
            TrialState.CREATED, "True", "TrialCreated", "Trial is created", trial.creation_time
        )
    ]
    if trial.start_time:
        running = "True" if trial.status == TrialState.RUNNING else "False"
        found.append(
            condition(
                TrialState.RUNNING, running, "TrialRunning", "Trial is running", trial.start_time
            )
        )
    if trial.ended:
        found.append(
            condition(trial.status, "True", trial.reason, trial.message, trial.completion_time)
        )
    return found
