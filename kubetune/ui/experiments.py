"""The dashboard's window on hyperparameter searches: experiments read through an
ExperimentBackend (kubetune.katib: local or Kubernetes) and answered as plain dicts.

Every use of kubetune.katib by the dashboard is in this module; the rest of `kubetune.ui` sees
`ExperimentSource`. What the page gets of an experiment is kubetune's ExperimentReport (status,
objective, search space, trials with values, status, objective and metrics, the best trial):
never the Experiment's trial template, so nothing of a job's settings or secrets.
"""

from __future__ import annotations

from typing import Any

from kubetune.katib import metrics
from kubetune.katib.backends.base import ExperimentBackend
from kubetune.katib.report import experiment_report
from kubetune.katib.results import objective_of
from kubetune.ui import views
from kubetune.ui.source import JobSource, KubernetesSource, LocalSource, not_found_as

# Katib's status counters of the trials that have ended, in any way.
ENDED_COUNTERS = (
    "trialsSucceeded",
    "trialsFailed",
    "trialsKilled",
    "trialsEarlyStopped",
    "trialMetricsUnavailable",
)
# What the backend says when the cluster has no Katib (no Experiment CRD).
NOT_INSTALLED = "CRD is not installed"


class Unavailable(RuntimeError):
    """The backend cannot hold experiments (a cluster without Katib)."""


def summary(experiment: dict[str, Any], backend: str) -> dict[str, Any]:
    """The row of the experiment list, from an Experiment in API form: state with reason,
    objective, trials ended / running / in all and the budget, the best trial and its objective,
    times."""
    metadata, spec = experiment["metadata"], experiment.get("spec") or {}
    status = experiment.get("status") or {}
    state, reason, message = views.state_of(list(status.get("conditions") or []))
    metric_name, kind, strategy = objective_of(experiment)
    optimal = status.get("currentOptimalTrial") or {}
    observed = (optimal.get("observation") or {}).get("metrics") or []
    return {
        "name": metadata["name"],
        "namespace": metadata.get("namespace") or "default",
        "backend": backend,
        "state": state,
        "reason": reason,
        "message": message,
        "objective_metric_name": metric_name,
        "objective_type": kind,
        "objective_goal": spec["objective"].get("goal"),
        "algorithm_name": (spec.get("algorithm") or {}).get("algorithmName", ""),
        "trial_count": int(status.get("trials") or 0),
        "trials_ended": sum(int(status.get(c) or 0) for c in ENDED_COUNTERS),
        "trials_running": int(status.get("trialsRunning") or 0),
        "trials_failed": int(status.get("trialsFailed") or 0),
        "max_trial_count": spec.get("maxTrialCount"),
        "parallel_trial_count": spec.get("parallelTrialCount"),
        "best_trial": optimal.get("bestTrialName") or None,
        "best_objective": metrics.objective_value(observed, metric_name, strategy),
        "creation_time": metadata.get("creationTimestamp"),
        "start_time": status.get("startTime"),
        "completion_time": status.get("completionTime"),
    }


class ExperimentSource:
    """The experiments of one backend in every namespace it can see, as the dashboard reads them."""

    def __init__(self, backend: ExperimentBackend) -> None:
        self.backend = backend

    @property
    def name(self) -> str:
        """The backend's name: local or kubernetes."""
        return self.backend.name

    def list_experiments(self) -> list[dict[str, Any]]:
        """A summary of every experiment, oldest first.

        Raises:
            Unavailable: the backend has no experiments to list (a cluster without Katib).
        """
        try:
            found = self.backend.list_experiments(None)
        except RuntimeError as e:
            if NOT_INSTALLED in str(e):
                raise Unavailable(str(e)) from None
            raise
        return [summary(e, self.backend.name) for e in found]

    def _experiment(self, namespace: str, name: str) -> dict[str, Any]:
        with not_found_as(f"experiment {namespace}/{name}"):
            return self.backend.get_experiment(name, namespace)

    def experiment(self, namespace: str, name: str) -> dict[str, Any]:
        """The summary plus the report: search space, conditions, every trial (values, status,
        objective, metrics, `best`) in creation order, and where a local one's results are.

        Raises:
            NotFound: the experiment does not exist.
        """
        with not_found_as(f"experiment {namespace}/{name}"):  # deleted between these reads too
            found = self.backend.get_experiment(name, namespace)
            trials = self.backend.list_trials(name, namespace)
            outputs = self.backend.experiment_outputs(name, namespace)
        report = experiment_report(found, trials, self.backend.name, outputs).to_dict()
        for trial in report["trials"]:
            trial["best"] = trial["name"] == report["best_trial"]
        return {**report, **summary(found, self.backend.name)}

    def delete(self, namespace: str, name: str) -> None:
        """Stops the experiment and removes it with its trials (and their jobs).

        Raises:
            NotFound: the experiment does not exist.
        """
        self._experiment(namespace, name)
        self.backend.delete_experiment(name, namespace)


def experiments_beside(jobs: JobSource) -> ExperimentSource:
    """The experiments of the backend whose jobs `jobs` shows: the same KUBETUNE_HOME, or the
    same cluster, credentials and namespace."""
    if isinstance(jobs, LocalSource):
        from kubetune.katib.backends.local.backend import LocalExperiments

        return ExperimentSource(LocalExperiments(home=jobs.backend.home))
    if isinstance(jobs, KubernetesSource):
        from kubetune.katib.backends.kubernetes.backend import KubernetesExperiments

        cluster = jobs.backend
        return ExperimentSource(
            KubernetesExperiments(
                namespace=cluster.namespace,
                config_file=cluster.config_file,
                context=cluster.context,
                client_configuration=cluster.client_configuration,
            )
        )
    raise ValueError(f"no experiments beside the jobs of {type(jobs).__name__}")
