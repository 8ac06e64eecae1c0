"""Local experiment folders written directly (no controller, no trial runs), for the dashboard's
API tests and its benchmark: the Experiment as `KatibClient.tune(dry_run=True)` renders it for
a custom objective, and the record its controller would have written (conditions, trials with
values, status and metrics, the best trial). A "running" experiment names a live stand-in process
(see ui_jobs) as its controller, so it is not read as ControllerLost."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from kubetune.contract import layout
from kubetune.katib import KatibClient, search
from kubetune.katib.backends.local.store import (
    ExperimentDir,
    ExperimentRecord,
    TrialRecord,
    experiment_dir,
)
from tests.ui.ui_jobs import stand_in

METRIC = "score"  # what `objective` prints
# (values, status, objective) of each trial, in creation order.
Trial = tuple[dict[str, str], str, float | None]


def objective(parameters: dict[str, str]) -> None:
    """A custom objective: the distance of x from 0.3, worse for the 'slow' optimizer."""
    penalty = 0.1 if parameters["optimizer"] == "slow" else 0.0
    print(f"score={(float(parameters['x']) - 0.3) ** 2 + penalty}")


def rendered(
    home: Path, name: str, namespace: str, env: dict[str, str] | None, **tune: Any
) -> dict[str, Any]:
    """The Experiment that tune() of `objective` would create (nothing is created)."""
    arguments: dict[str, Any] = {
        "objective": objective,
        "parameters": {
            "x": search.double(min=0, max=1),
            "optimizer": search.categorical(["fast", "slow"]),
        },
        "objective_metric_name": METRIC,
        "objective_type": "minimize",
        "max_trial_count": 6,
        "parallel_trial_count": 2,
        "resources_per_trial": {"cpu": 1},
        "env_per_trial": env,
        **tune,
    }
    client = KatibClient(home=home, namespace=namespace)
    (experiment,) = client.tune(name, dry_run=True, **arguments)
    return dict(experiment)


def write_experiment(
    home: Path,
    name: str,
    trials: list[Trial],
    namespace: str = "default",
    state: str = "succeeded",
    created_minutes_ago: float = 10.0,
    env: dict[str, str] | None = None,
    **tune: Any,
) -> ExperimentDir:
    """Writes an experiment's folder in `state` ('running', 'succeeded' or 'failed') with
    `trials`; the best succeeded trial keeps its job (as the controller records it)."""
    folder = experiment_dir(home, namespace, name)
    folder.path.mkdir(parents=True)
    layout.write_json_atomic(folder.experiment_path, rendered(home, name, namespace, env, **tune))
    created = datetime.now(UTC) - timedelta(minutes=created_minutes_ago)

    def stamp(seconds: float) -> str:
        return (created + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")

    record = ExperimentRecord(
        name=name, namespace=namespace, uid=uuid.uuid4().hex, creation_time=stamp(0)
    )
    record.set_condition("Created", "ExperimentCreated", "Experiment is created")
    record.start_time = stamp(1)
    record.set_condition("Running", "ExperimentRunning", "Experiment is running")
    for index, (values, status, value) in enumerate(trials):
        trial = TrialRecord(
            name=f"{name}-{index:08d}",
            index=index,
            assignments=values,
            status=status,
            reason=f"Trial{status}",
            creation_time=stamp(10 * index + 2),
            start_time=stamp(10 * index + 3),
            job_kept=False,
        )
        if value is not None:
            text = repr(value)
            trial.metrics = [{"name": METRIC, "min": text, "max": text, "latest": text}]
            trial.objective = value
        if trial.ended:
            trial.completion_time = stamp(10 * index + 9)
        else:
            trial.job_kept = True
        record.trials.append(trial)
    done = [t for t in record.trials if t.status == "Succeeded" and t.objective is not None]
    if done:
        best = min(done, key=lambda t: t.objective or 0.0)
        best.job_kept = True
        record.best_trial = best.name
    if state == "running":
        process = stand_in()
        record.controller = {"pid": process.pid, "create_time": process.create_time}
    elif state == "succeeded":
        record.set_condition(
            "Succeeded",
            "ExperimentMaxTrialsReached",
            "Experiment has succeeded because max trial count has reached",
        )
    else:
        record.set_condition(
            "Failed",
            "ExperimentMaxFailedTrialsReached",
            "Experiment has failed because max failed count has reached",
        )
    folder.write_record(record)
    return folder
