"""The ExperimentBackend interface that KatibClient delegates to: local or Kubernetes.

Experiments and trials travel in API form (Katib's `Experiment` and `Trial` as the Kubernetes
API has them: dicts with camelCase keys); the client turns them into Katib's model classes.
`timeout` arguments are the seconds one request to the Kubernetes API server may take; the
local backend reads files and has nothing to time out.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kubetune.katib.request import ExperimentRequest


def oldest_first(experiments: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Experiments (API form) in the order they were created (then by namespace and name)."""
    return sorted(
        experiments,
        key=lambda e: (
            e["metadata"].get("creationTimestamp") or "",
            e["metadata"].get("namespace") or "",
            e["metadata"]["name"],
        ),
    )


class ExperimentBackend(ABC):
    """Runs hyperparameter searches somewhere and reports on them."""

    name: str = "base"
    namespace: str = "default"

    @abstractmethod
    def render_experiment(
        self, request: ExperimentRequest, secrets: dict[str, str]
    ) -> list[dict[str, Any]]:
        """The objects `create_experiment` would create, in order, without creating anything."""

    @abstractmethod
    def create_experiment(self, request: ExperimentRequest, secrets: dict[str, str]) -> None:
        """Creates the experiment and returns without waiting; `secrets` (environment variables)
        reach its trials, never written with it. RuntimeError when one of that name exists."""

    @abstractmethod
    def create_experiment_object(self, experiment: dict[str, Any]) -> None:
        """Creates an Experiment given in API form (Katib's `create_experiment`)."""

    @abstractmethod
    def get_experiment(
        self, name: str, namespace: str, timeout: float | None = None
    ) -> dict[str, Any]:
        """The Experiment with its status; RuntimeError naming it (NotFound) when it does not exist."""

    @abstractmethod
    def list_experiments(
        self, namespace: str | None, timeout: float | None = None
    ) -> list[dict[str, Any]]:
        """Every Experiment of the namespace, oldest first; with None, of every namespace the
        backend can see (on Kubernetes: the cluster when the credentials may list it, else the
        backend's own namespace)."""

    @abstractmethod
    def get_trial(self, name: str, namespace: str, timeout: float | None = None) -> dict[str, Any]:
        """One Trial; RuntimeError naming it (NotFound) when it does not exist."""

    @abstractmethod
    def list_trials(
        self, experiment_name: str | None, namespace: str, timeout: float | None = None
    ) -> list[dict[str, Any]]:
        """The Trials of one experiment (all of the namespace when `experiment_name` is None),
        in the order they were created."""

    @abstractmethod
    def edit_experiment_budget(self, name: str, namespace: str, changes: dict[str, int]) -> None:
        """Sets the Experiment's maxTrialCount, parallelTrialCount or maxFailedTrialCount."""

    @abstractmethod
    def delete_experiment(
        self, name: str, namespace: str, delete_options: dict[str, Any] | None = None
    ) -> None:
        """Stops the experiment and removes it with its trials and what they shared;
        `delete_options` (a V1DeleteOptions in API form) is the request's body on Kubernetes."""

    @abstractmethod
    def trial_logs(
        self, experiment: str, trial: str, namespace: str, follow: bool
    ) -> Iterator[str]:
        """The lines of the trial's primary container; with `follow`, as they are written,
        until the trial ends."""

    @abstractmethod
    def trial_metric_logs(
        self, trial: str, namespace: str, db_manager_address: str, timeout: float
    ) -> Any:
        """Every value the trial reported, as Katib's `MetricLog` protobufs (time_stamp,
        metric.name, metric.value)."""

    def experiment_outputs(self, name: str, namespace: str) -> dict[str, Path]:
        """Where the experiment's results table and plots are, when this machine has them."""
        return {}
