"""Where a local experiment lives on disk, and its record.

```
$KUBETUNE_HOME/experiments/<namespace>/<name>/
  experiment.json    the Experiment as created (API form, no status); edit_experiment_budget
                     rewrites its trial counts
  request.json       the checked experiment the controller runs (kubetune.katib.request; no
                     secret: those reach the controller on its standard input)
  status.json        the record: conditions, times, every trial (values, status, metrics), the
                     best trial, the controller's process; written by the controller only
  shared/            the workspace all fine-tuning trials share (model, dataset, cache)
  metric-logs/<trial>.json   every value each ended trial reported
  results.csv, results.json  one row per trial: values, status, objective, metrics
  objective.png, parameters.png   the objective per trial; each parameter against it
  controller.log     what the controller reports
```

The trials themselves are local jobs in $KUBETUNE_HOME/jobs/<namespace>/<trial>/, named
`<experiment>-<8 characters>` and labelled with the experiment's name.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from kubetune.contract import conditions, layout
from kubetune.contract.conditions import Condition, JobCondition
from kubetune.katib.constants import constants
from kubetune.params import validation
from kubetune.training.backends.local.jobdir import now_iso

EXPERIMENTS_DIR = "experiments"
RECORD_FORMAT = 1


class TrialState(StrEnum):
    """Where a trial stands: Katib's trial condition types."""

    CREATED = constants.TRIAL_CONDITION_CREATED
    RUNNING = constants.TRIAL_CONDITION_RUNNING
    SUCCEEDED = constants.TRIAL_CONDITION_SUCCEEDED
    FAILED = constants.TRIAL_CONDITION_FAILED
    KILLED = constants.TRIAL_CONDITION_KILLED
    EARLY_STOPPED = constants.TRIAL_CONDITION_EARLY_STOPPED
    METRICS_UNAVAILABLE = constants.TRIAL_CONDITION_METRICS_UNAVAILABLE


# The states a trial ends in.
ENDED = frozenset(
    {
        TrialState.SUCCEEDED,
        TrialState.FAILED,
        TrialState.KILLED,
        TrialState.EARLY_STOPPED,
        TrialState.METRICS_UNAVAILABLE,
    }
)


@dataclass(frozen=True)
class ExperimentDir:
    """The paths of one experiment's folder."""

    path: Path

    @property
    def name(self) -> str:
        """The experiment's name."""
        return self.path.name

    @property
    def namespace(self) -> str:
        """The experiment's namespace."""
        return self.path.parent.name

    @property
    def home(self) -> Path:
        """The KUBETUNE_HOME the experiment belongs to."""
        return self.path.parent.parent.parent

    @property
    def experiment_path(self) -> Path:
        """experiment.json: the Experiment as created."""
        return self.path / "experiment.json"

    @property
    def request_path(self) -> Path:
        """request.json: the checked experiment the controller runs."""
        return self.path / "request.json"

    @property
    def status_path(self) -> Path:
        """status.json: the controller's record."""
        return self.path / "status.json"

    @property
    def shared_workspace(self) -> Path:
        """The workspace the fine-tuning trials share."""
        return self.path / "shared"

    @property
    def log_path(self) -> Path:
        """What the controller reports."""
        return self.path / "controller.log"

    def metric_log_path(self, trial: str) -> Path:
        """Where the values an ended trial reported are kept."""
        return self.path / "metric-logs" / f"{trial}.json"

    @property
    def results_csv(self) -> Path:
        """The results table as CSV."""
        return self.path / "results.csv"

    @property
    def results_json(self) -> Path:
        """The results table as JSON, with the best row."""
        return self.path / "results.json"

    @property
    def objective_png(self) -> Path:
        """The plot of the objective per trial."""
        return self.path / "objective.png"

    @property
    def parameters_png(self) -> Path:
        """The plot of each hyperparameter against the objective."""
        return self.path / "parameters.png"

    def exists(self) -> bool:
        """Whether the experiment is there (its experiment.json)."""
        return self.experiment_path.is_file()

    def read_record(self) -> ExperimentRecord | None:
        """The record; None when there is none (yet) or it cannot be read."""
        data = layout.read_json(self.status_path)
        if not isinstance(data, dict):
            return None
        try:
            return ExperimentRecord.from_dict(data)
        except (TypeError, ValueError, KeyError):
            return None

    def write_record(self, record: ExperimentRecord) -> None:
        """Writes the record atomically."""
        layout.write_json_atomic(self.status_path, record.to_dict())

    def read_experiment(self) -> dict[str, Any]:
        """The Experiment as created (OSError, ValueError when it cannot be read)."""
        return json.loads(self.experiment_path.read_text())

    def read_request(self) -> dict[str, Any]:
        """The checked experiment as data (OSError, ValueError when it cannot be read)."""
        return json.loads(self.request_path.read_text())

    def read_metric_logs(self, trial: str) -> list[dict[str, str]]:
        """The values a trial reported, as kept when it ended ([] when none were kept)."""
        found = layout.read_json(self.metric_log_path(trial))
        return found if isinstance(found, list) else []


def namespace_dir(home: Path, namespace: str) -> Path:
    """The folder of a namespace's experiments; ValueError unless `namespace` is a DNS-1123 label."""
    validation.raise_if(validation.dns1123_label("namespace", namespace))
    return home / EXPERIMENTS_DIR / namespace


def experiment_dir(home: Path, namespace: str, name: str) -> ExperimentDir:
    """The folder of an experiment; ValueError unless `name` is a DNS-1035 label."""
    validation.raise_if(validation.dns1035_label("name", name))
    return ExperimentDir(namespace_dir(home, namespace) / name)


@dataclass
class TrialRecord:
    """One trial: its values (as text, Katib's parameter assignments), state and metrics."""

    name: str
    index: int
    assignments: dict[str, str]
    status: TrialState = TrialState.CREATED
    reason: str = "TrialCreated"
    message: str = ""
    creation_time: str = field(default_factory=now_iso)
    start_time: str | None = None
    completion_time: str | None = None
    # Katib's observation: [{"name", "min", "max", "latest"}], values as text.
    metrics: list[dict[str, str]] = field(default_factory=list)
    objective: float | None = None
    output_dir: str | None = None
    # Whether the trial's job is still there (jobs of trials that are not the best are removed
    # unless the experiment retains its trials).
    job_kept: bool = True

    @property
    def ended(self) -> bool:
        """Whether the trial has ended (in any of Katib's end states)."""
        return self.status in ENDED

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON data."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrialRecord:
        """The record from JSON data (unknown keys left out)."""
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["status"] = TrialState(values.get("status", TrialState.CREATED))
        return cls(**values)


@dataclass
class ExperimentRecord:
    """status.json: the experiment's state as its controller last wrote it."""

    name: str
    namespace: str
    uid: str
    creation_time: str = field(default_factory=now_iso)
    conditions: list[JobCondition] = field(default_factory=list)
    start_time: str | None = None
    completion_time: str | None = None
    trials: list[TrialRecord] = field(default_factory=list)
    best_trial: str | None = None
    # The controller's process: {"pid", "create_time"} once it runs.
    controller: dict[str, Any] | None = None
    format: int = RECORD_FORMAT

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON data."""
        data = dataclasses.asdict(self)
        data["conditions"] = [c.to_dict() for c in self.conditions]
        data["trials"] = [t.to_dict() for t in self.trials]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExperimentRecord:
        """The record from JSON data (unknown keys left out)."""
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["conditions"] = [JobCondition.from_dict(c) for c in data.get("conditions") or []]
        values["trials"] = [TrialRecord.from_dict(t) for t in data.get("trials") or []]
        return cls(**values)

    def trial(self, name: str) -> TrialRecord | None:
        """The trial named `name`, or None."""
        return next((t for t in self.trials if t.name == name), None)

    @property
    def status(self) -> Condition:
        """The latest true condition's type (Created when none)."""
        return conditions.current(self.conditions)

    @property
    def ended(self) -> bool:
        """Whether the experiment has ended (Succeeded or Failed)."""
        return conditions.has_ended(self.conditions)

    def set_condition(self, condition_type: Condition, reason: str, message: str) -> None:
        """Makes `condition_type` true, as Katib's controller does (the rules of job
        conditions: Created stays true, Running turns False when the experiment ends)."""
        stamp = now_iso()
        self.conditions = conditions.transition(
            self.conditions, condition_type, reason, message, stamp
        )
        if condition_type in conditions.TERMINAL:
            self.completion_time = stamp
