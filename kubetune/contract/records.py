"""The records the processes of a job write for each other: training progress and history (the
runtime, for the backends and the dashboard), the storage initializer's completion marker (for
the runtime and reruns), the local launch plan (the client, for the local supervisor) and
failure records (any step, for whoever reports its end).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from kubetune.contract import layout

# --- training progress -----------------------------------------------------------------------


class ProgressStatus(StrEnum):
    """What the runtime is doing, as its progress record says."""

    TRAINING = "training"
    EVALUATING = "evaluating"
    SAVING = "saving"
    DONE = "done"


@dataclass
class HistoryRecord:
    """One logged moment of a run: step, epoch, time, and every number the Trainer logged then
    (loss, learning_rate, grad_norm, eval_*, ...; None for a value that was not finite)."""

    step: int
    epoch: float
    time: float
    values: dict[str, float | None] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The record as one history.jsonl line holds it: step, epoch, the values, time."""
        return {"step": self.step, "epoch": self.epoch, **self.values, "time": self.time}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HistoryRecord:
        """The record of a history line (numbers only; other entries are left out).

        Raises:
            ValueError: the step is not an integer.
        """
        step = data.get("step")
        if isinstance(step, bool) or not isinstance(step, int):
            raise ValueError(f"history record: step={step!r} is not an integer")
        values = {k: _number(v) for k, v in data.items() if k not in ("step", "epoch", "time")}
        return cls(
            step=step,
            epoch=_number(data.get("epoch")) or 0.0,
            time=_number(data.get("time")) or 0.0,
            values={k: v for k, v in values.items() if v is not None or data[k] is None},
        )


def _number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value if math.isfinite(value) else None
    return None


@dataclass
class ProgressRecord:
    """The runtime's latest report (workspace/progress.json, rank 0): step, total steps, epoch,
    loss, learning rate, samples/s, ETA, status, the step a restart resumed from, and the latest
    logged record (so that a backend reading only printed records has the history too)."""

    step: int = 0
    total_steps: int | None = None
    epoch: float = 0.0
    loss: float | None = None
    learning_rate: float | None = None
    samples_per_second: float | None = None
    eta_seconds: float | None = None
    updated_at: float | None = None
    status: ProgressStatus = ProgressStatus.TRAINING
    restarted_from_step: int | None = None
    logged: HistoryRecord | None = None

    def to_dict(self) -> dict[str, Any]:
        """The record as progress.json holds it."""
        data = dataclasses.asdict(self)
        data["status"] = str(self.status)
        data["logged"] = None if self.logged is None else self.logged.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProgressRecord:
        """A record from what a progress file or log line held; missing or mistyped entries
        take their defaults, unknown ones are left out (a newer runtime may add some)."""
        known = {f.name: f for f in dataclasses.fields(cls)}
        values: dict[str, Any] = {}
        for key, value in data.items():
            if key not in known or value is None:
                continue
            if key == "status":
                try:
                    values[key] = ProgressStatus(value)
                except ValueError:
                    continue
            elif key == "logged":
                if isinstance(value, dict):
                    try:
                        values[key] = HistoryRecord.from_dict(value)
                    except ValueError:
                        continue
            elif key in ("step", "total_steps", "restarted_from_step"):
                if isinstance(value, int) and not isinstance(value, bool):
                    values[key] = value
            elif _number(value) is not None:
                values[key] = value
        return cls(**values)


# Where the workspace lies in a volume the client cannot read (Kubernetes), the backend sets
# this variable to "1" and rank 0 also prints each progress record as PROGRESS_LOG_PREFIX + JSON.
PROGRESS_LOG_ENV = "KUBETUNE_PROGRESS_LOG"
PROGRESS_LOG_PREFIX = "kubetune-progress "


def progress_log_line(record: dict[str, Any]) -> str:
    """One log line carrying a progress record (`ProgressRecord.to_dict()`)."""
    return PROGRESS_LOG_PREFIX + json.dumps(record, sort_keys=True, default=str)


def progress_records_in_log(text: str) -> list[dict[str, Any]]:
    """Every progress record printed in `text` (a log), in order."""
    found = []
    for line in text.splitlines():
        # A progress bar's carriage-return redraws may share the line.
        _, marker, payload = line.rpartition(PROGRESS_LOG_PREFIX)
        if not marker:
            continue
        try:
            record = json.loads(payload)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict):
            found.append(record)
    return found


def last_progress_in_log(text: str) -> dict[str, Any] | None:
    """The last progress record printed in `text` (a log), or None when it holds none."""
    for line in reversed(text.splitlines()):
        found = progress_records_in_log(line)
        if found:
            return found[-1]
    return None


def without_progress_record(line: str) -> str | None:
    """A log line without the progress record printed in it (reports carry those); None when
    nothing else is left."""
    shown, found, _ = line.partition(PROGRESS_LOG_PREFIX)
    if not found:
        return line
    return shown.rstrip("\r") or None


# --- the storage initializer's completion marker -----------------------------------------------

MARKER_FORMAT = 1


@dataclass(frozen=True)
class ModelFetched:
    """What the storage initializer fetched of the model."""

    uri: str
    path: str  # model/ in the workspace, or the local folder used in place
    in_place: bool
    files: int
    bytes: int
    seconds: float


@dataclass(frozen=True)
class DatasetFetched:
    """What the storage initializer fetched and saved of the dataset (`details`: the source's
    own figures, e.g. the number of S3 objects; for a mix, each dataset's figures)."""

    kind: str  # a SourceKind, or 'mix'
    source: str
    splits: dict[str, int]
    columns: list[str]
    downloaded_bytes: int
    download_seconds: float
    bytes: int
    seconds: float
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class InitializerMarker:
    """The completion marker (workspace/.kubetune-initialized), written last: the workspace
    holds the model and dataset of the spec whose `fingerprint` it carries."""

    fingerprint: str
    kubetune_version: str | None
    job: str
    model: ModelFetched
    dataset: DatasetFetched
    seconds: float
    finished_at: str
    format: int = MARKER_FORMAT

    def to_dict(self) -> dict[str, Any]:
        """The marker as JSON data (the dataset's details among its own figures)."""
        dataset = dataclasses.asdict(self.dataset)
        details = dataset.pop("details")
        dataset["kind"] = str(self.dataset.kind)
        return {
            "format": self.format,
            "fingerprint": self.fingerprint,
            "kubetune_version": self.kubetune_version,
            "job": self.job,
            "model": dataclasses.asdict(self.model),
            "dataset": {**dataset, **details},
            "seconds": self.seconds,
            "finished_at": self.finished_at,
        }

    @classmethod
    def from_dict(cls, data: Any) -> InitializerMarker:
        """The marker `to_dict` wrote.

        Raises:
            ValueError: `data` is not a marker of this format.
        """
        try:
            if not isinstance(data, dict) or data.get("format") != MARKER_FORMAT:
                raise ValueError("not a marker of format 1")
            model_fields = {f.name for f in dataclasses.fields(ModelFetched)}
            dataset_fields = {f.name for f in dataclasses.fields(DatasetFetched)} - {"details"}
            dataset = dict(data["dataset"])
            details = {k: dataset.pop(k) for k in list(dataset) if k not in dataset_fields}
            return cls(
                fingerprint=str(data["fingerprint"]),
                kubetune_version=data.get("kubetune_version"),
                job=str(data["job"]),
                model=ModelFetched(**{k: v for k, v in data["model"].items() if k in model_fields}),
                dataset=DatasetFetched(
                    **{**dataset, "kind": str(dataset["kind"])}, details=details
                ),
                seconds=float(data["seconds"]),
                finished_at=str(data["finished_at"]),
            )
        except (KeyError, TypeError, AttributeError) as e:
            raise ValueError(f"not a completion marker: {type(e).__name__}: {e}") from None


# --- the local launch plan -----------------------------------------------------------------------


@dataclass
class LaunchPlan:
    """How a local job maps onto the machine, from `resources_per_worker`: planned by the client,
    recorded in status.json, carried out by the job's supervisor.

    `threads`: OMP_NUM_THREADS of each training process. `cpus`, `memory` (bytes) and `gpus`:
    what the job reserves in all (its workers together) while it runs; the local queue admits it
    when that much is free. `gpu_ids`/`gpu_slices`: the GPUs the queue gave the job and each
    worker's CUDA_VISIBLE_DEVICES, once admitted. `warnings` (not recorded): what the user
    should know.
    """

    num_workers: int
    procs_per_worker: int
    threads: int
    gpus_per_worker: int
    cpus: float
    memory: float
    gpu_ids: list[str] = field(default_factory=list)
    gpu_slices: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def gpus(self) -> int:
        """The GPUs the job needs in all."""
        return self.gpus_per_worker * self.num_workers

    def slices(self, gpu_ids: list[str]) -> list[str]:
        """CUDA_VISIBLE_DEVICES of each worker, given the GPU ids assigned to the job ('' hides all)."""
        n = self.gpus_per_worker
        return [",".join(gpu_ids[i * n : (i + 1) * n]) for i in range(self.num_workers)]

    def to_dict(self) -> dict[str, Any]:
        """The plan as status.json records it (without its warnings)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "warnings"}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LaunchPlan:
        """The plan `to_dict` wrote (unknown entries are left out).

        Raises:
            TypeError: a required entry is missing.
        """
        known = {f.name for f in dataclasses.fields(cls)} - {"warnings"}
        return cls(**{k: v for k, v in data.items() if k in known})


# --- failure records ------------------------------------------------------------------------------

# Where a step of a job (storage initializer, package step, runtime) writes its FailureRecord
# when it fails, if the process that started it set this variable.
FAILURE_FILE_ENV = "KUBETUNE_FAILURE_FILE"


@dataclass(frozen=True)
class FailureRecord:
    """Why a step failed, in one line, as the step itself said it (`component`: e.g.
    'kubetune.storage_initializer'); read instead of matching log text."""

    component: str
    message: str

    @property
    def line(self) -> str:
        """The one-line error the step printed last: '<component>: error: <message>'."""
        return f"{self.component}: error: {self.message}"


def write_failure(record: FailureRecord, environ: Mapping[str, str]) -> None:
    """Writes `record` to the file FAILURE_FILE_ENV names in `environ` (nothing when unset; a
    failure to write is ignored: the step is failing already)."""
    path = environ.get(FAILURE_FILE_ENV)
    if not path:
        return
    with contextlib.suppress(OSError):
        layout.write_json_atomic(path, dataclasses.asdict(record))


def read_failure(path: Path) -> FailureRecord | None:
    """The failure record at `path`; None when there is none (or it is unreadable)."""
    try:
        data = layout.read_json(path)
    except OSError:
        return None
    if not isinstance(data, dict):
        return None
    component, message = data.get("component"), data.get("message")
    if not isinstance(component, str) or not isinstance(message, str):
        return None
    return FailureRecord(component, message)
