"""kubetune's own view of an experiment, for people and dashboards: `ExperimentReport` (status,
objective, search space, best trial, where its results are) with a `TrialReport` per trial
(values, status, objective, metrics). Made from the Experiment and Trials in API form, so it is
the same for both backends; `to_dict()` is plain JSON data.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kubetune.katib import metrics
from kubetune.katib.constants import constants
from kubetune.katib.results import objective_of, trial_status
from kubetune.training.backends.kubernetes.manifests import OUTPUT_DIR_ANNOTATION

# A local trial's annotation: "kept" or "removed", whether its job is still there.
JOB_ANNOTATION = "kubetune.io/job"


@dataclass
class TrialReport:
    """One trial: its values (text, as Katib assigns them), status, objective and metrics."""

    name: str
    status: str
    values: dict[str, str]
    objective: float | None = None
    # metric name -> {"min", "max", "latest"} (text)
    metrics: dict[str, dict[str, str]] = field(default_factory=dict)
    message: str = ""
    creation_time: str | None = None
    start_time: str | None = None
    completion_time: str | None = None
    output_dir: str | None = None
    job_kept: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON data."""
        return dataclasses.asdict(self)


@dataclass
class ExperimentReport:
    """An experiment: `KatibClient.get_experiment_report(name)`."""

    name: str
    namespace: str
    backend: str
    status: str
    message: str
    objective_metric_name: str
    objective_type: str
    objective_goal: float | None
    algorithm_name: str
    parameters: list[dict[str, Any]]
    max_trial_count: int | None
    parallel_trial_count: int | None
    max_failed_trial_count: int | None
    trials: list[TrialReport] = field(default_factory=list)
    best_trial: str | None = None
    conditions: list[dict[str, Any]] = field(default_factory=list)
    creation_time: str | None = None
    start_time: str | None = None
    completion_time: str | None = None
    # Local experiments: results_csv, results_json, objective_png, parameters_png, folder.
    outputs: dict[str, str] = field(default_factory=dict)

    @property
    def best(self) -> TrialReport | None:
        """The best trial's report, or None."""
        return next((t for t in self.trials if t.name == self.best_trial), None)

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON data."""
        data = dataclasses.asdict(self)
        data["trials"] = [t.to_dict() for t in self.trials]
        return data


def trial_report(trial: Mapping[str, Any], metric_name: str, strategy: str) -> TrialReport:
    """A trial's report from its Trial (API form), its objective by `strategy`."""
    status = trial.get("status") or {}
    observed = (status.get("observation") or {}).get("metrics") or []
    true = [c for c in status.get("conditions") or [] if c.get("status") == "True"]
    annotations = trial["metadata"].get("annotations") or {}
    kept = annotations.get(JOB_ANNOTATION)
    return TrialReport(
        name=trial["metadata"]["name"],
        status=trial_status(trial),
        values={a["name"]: a["value"] for a in trial["spec"].get("parameterAssignments") or []},
        objective=metrics.objective_value(observed, metric_name, strategy),
        metrics={m["name"]: {k: m.get(k) for k in ("min", "max", "latest")} for m in observed},
        message=str(true[-1].get("message") or "") if true else "",
        creation_time=trial["metadata"].get("creationTimestamp"),
        start_time=status.get("startTime"),
        completion_time=status.get("completionTime"),
        output_dir=annotations.get(OUTPUT_DIR_ANNOTATION),
        job_kept=None if kept is None else kept == "kept",
    )


def experiment_report(
    experiment: Mapping[str, Any],
    trials: Sequence[Mapping[str, Any]],
    backend: str,
    outputs: Mapping[str, Any] | None = None,
) -> ExperimentReport:
    """An experiment's report from its Experiment and Trials (API form)."""
    spec, status = experiment["spec"], experiment.get("status") or {}
    metric_name, kind, strategy = objective_of(experiment)
    conditions = list(status.get("conditions") or [])
    true = [c for c in conditions if c.get("status") == "True"]
    optimal = status.get("currentOptimalTrial") or {}
    return ExperimentReport(
        name=experiment["metadata"]["name"],
        namespace=experiment["metadata"].get("namespace") or "default",
        backend=backend,
        status=str(true[-1]["type"]) if true else constants.EXPERIMENT_CONDITION_CREATED,
        message=str(true[-1].get("message") or "") if true else "",
        objective_metric_name=metric_name,
        objective_type=kind,
        objective_goal=spec["objective"].get("goal"),
        algorithm_name=spec.get("algorithm", {}).get("algorithmName", ""),
        parameters=list(spec.get("parameters") or []),
        max_trial_count=spec.get("maxTrialCount"),
        parallel_trial_count=spec.get("parallelTrialCount"),
        max_failed_trial_count=spec.get("maxFailedTrialCount"),
        trials=[trial_report(t, metric_name, strategy) for t in trials],
        best_trial=optimal.get("bestTrialName") or None,
        conditions=conditions,
        creation_time=experiment["metadata"].get("creationTimestamp"),
        start_time=status.get("startTime"),
        completion_time=status.get("completionTime"),
        outputs={k: str(v) for k, v in (outputs or {}).items()},
    )
