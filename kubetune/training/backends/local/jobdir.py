"""Where a local job lives on disk, and its status file.

```
$KUBETUNE_HOME/jobs/<namespace>/<name>/      ($KUBETUNE_HOME defaults to ~/.kubetune)
  spec.json          the JobSpec (no secrets)
  status.json        conditions, restarts, process ids, exit codes, times (written by the supervisor)
  .reserve           space the supervisor frees to record the job's end on a full disk
  logs/
    supervisor.log   what the supervisor itself reports
    initializer.log  the storage initializer's output
    initializer.failure.json   why the storage initializer failed, as it said (a FailureRecord)
    worker-0.log     torchrun agent 0 and its processes (one file per simulated node)
    torchelastic/attempt-<n>/worker-<i>/   torchrun's files of each attempt: its reply file,
                     each process's error file and kubetune-rank.json (see outcomes.py)
  workspace/         model/, dataset/, outputs/, progress.json (see kubetune.contract.layout)
```

A job folder whose status.json cannot be read (empty, truncated, not a job status) still is a
job: `read_status` raises `StatusDamaged`, and the backend lists it with the reason.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubetune.contract import conditions, layout
from kubetune.contract.conditions import Condition, JobCondition
from kubetune.contract.records import LaunchPlan
from kubetune.params import validation

HOME_ENV = "KUBETUNE_HOME"
JOBS_DIR = "jobs"
KEPT_OUTPUTS_DIR = "kept-outputs"
KEPT_ID_LENGTH = 8  # characters of the job's uid in the name of its kept outputs
SPEC_FILE = "spec.json"
STATUS_FILE = "status.json"
LOGS_DIR = "logs"
WORKSPACE_DIR = "workspace"
SUPERVISOR_LOG = "supervisor.log"
INITIALIZER = "initializer"
TORCHELASTIC_DIR = "torchelastic"
RESERVE_FILE = ".reserve"


class StatusDamaged(Exception):
    """A job folder whose status.json is missing, empty, truncated or not a job status."""


def default_home() -> Path:
    """$KUBETUNE_HOME, or ~/.kubetune."""
    return Path(os.environ.get(HOME_ENV) or Path.home() / ".kubetune").expanduser()


def now_iso(timestamp: float | None = None) -> str:
    """The current UTC time (or that of `timestamp`) as Kubernetes writes it: 2026-01-31T12:00:00Z."""
    moment = datetime.now(UTC) if timestamp is None else datetime.fromtimestamp(timestamp, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def worker_source(index: int) -> str:
    """The log source name of worker (simulated node) `index`: 'worker-0', 'worker-1', ..."""
    return f"worker-{index}"


@dataclass(frozen=True)
class JobDir:
    """The paths of one job's directory."""

    path: Path

    @property
    def spec_path(self) -> Path:
        """spec.json: the JobSpec."""
        return self.path / SPEC_FILE

    @property
    def status_path(self) -> Path:
        """status.json: the JobStatus the supervisor writes."""
        return self.path / STATUS_FILE

    @property
    def logs_dir(self) -> Path:
        """logs/: one log file per process kind."""
        return self.path / LOGS_DIR

    @property
    def workspace(self) -> Path:
        """workspace/: the job's workspace (see kubetune.contract.layout)."""
        return self.path / WORKSPACE_DIR

    @property
    def supervisor_log(self) -> Path:
        """logs/supervisor.log: what the supervisor itself reports."""
        return self.logs_dir / SUPERVISOR_LOG

    @property
    def reserve_path(self) -> Path:
        """The space the supervisor frees to record the job's end on a full disk."""
        return self.path / RESERVE_FILE

    @property
    def home(self) -> Path:
        """The KUBETUNE_HOME the job belongs to (HOME/jobs/<namespace>/<name>)."""
        return self.path.parent.parent.parent

    def torchelastic_dir(self, attempt: int, source: str) -> Path:
        """torchrun's folder (--log-dir) for worker `source` in attempt `attempt`."""
        return self.logs_dir / TORCHELASTIC_DIR / f"attempt-{attempt}" / source

    def log_path(self, source: str) -> Path:
        """The log file of `source` ('initializer', 'worker-0', ...)."""
        return self.logs_dir / f"{source}.log"

    def failure_path(self, source: str) -> Path:
        """Where step `source` ('initializer') records why it failed (a FailureRecord)."""
        return self.logs_dir / f"{source}.failure.json"

    def sources(self, num_workers: int) -> list[str]:
        """The log sources of a job with `num_workers` workers, initializer first."""
        return [INITIALIZER, *(worker_source(i) for i in range(num_workers))]

    def exists(self) -> bool:
        """Whether the job is there (its folder; a damaged one without status.json counts)."""
        return self.path.is_dir()

    def read_status(self) -> JobStatus | None:
        """The status file's content; None when the job folder is gone.

        Raises StatusDamaged when the folder is there but its status.json cannot be read as a job
        status (kubetune writes it atomically, so only a fault outside kubetune damages it).
        """
        try:
            raw = self.status_path.read_bytes()
        except FileNotFoundError:
            if not self.path.is_dir():
                return None
            raise StatusDamaged(f"{self.status_path} is missing") from None
        except OSError as e:
            raise StatusDamaged(f"{self.status_path} cannot be read: {e.strerror}") from None
        if not raw.strip():
            raise StatusDamaged(f"{self.status_path} is empty")
        if b"\0" in raw:
            raise StatusDamaged(f"{self.status_path} holds binary data (NUL bytes), not JSON")
        try:
            data = json.loads(raw)
        except ValueError as e:
            raise StatusDamaged(f"{self.status_path} is not valid JSON (truncated?): {e}") from None
        return JobStatus.from_valid_dict(data, self.status_path)

    def write_status(self, status: JobStatus) -> None:
        """Writes status.json atomically.

        Raises:
            OSError: it cannot be written (a full disk).
        """
        layout.write_json_atomic(self.status_path, status.to_dict())


def namespace_dir(home: Path, namespace: str) -> Path:
    """The folder of a namespace's jobs; ValueError unless `namespace` is a DNS-1123 label."""
    validation.raise_if(validation.dns1123_label("namespace", namespace))
    return home / JOBS_DIR / namespace


def job_dir(home: Path, namespace: str, name: str) -> JobDir:
    """The folder of a job; ValueError unless `name` is a DNS-1035 label (nothing else can
    reach a path: '../x' cannot lead out of the home)."""
    validation.raise_if(validation.dns1035_label("name", name))
    return JobDir(namespace_dir(home, namespace) / name)


def kept_outputs_dir(home: Path, namespace: str, name: str, uid: str) -> Path:
    """Where `delete_job(keep_outputs=True)` moves a job's outputs."""
    validation.raise_if(validation.dns1035_label("name", name))
    validation.raise_if(validation.dns1123_label("namespace", namespace))
    return home / KEPT_OUTPUTS_DIR / namespace / f"{name}-{uid[:KEPT_ID_LENGTH]}"


def kept_outputs_dirs(home: Path, namespace: str, name: str) -> list[Path]:
    """The folders `kept_outputs_dir` made for jobs named `name` (one per deleted job), newest
    first; those of jobs whose names merely start with it ('name-b-...') are longer."""
    folder = home / KEPT_OUTPUTS_DIR / namespace
    length = len(name) + 1 + KEPT_ID_LENGTH
    found = [
        path
        for path in (folder.glob(f"{name}-*") if folder.is_dir() else [])
        if path.is_dir() and len(path.name) == length
    ]
    return sorted(found, key=lambda path: path.stat().st_mtime, reverse=True)


@dataclass
class ProcessRecord:
    """One process the supervisor started: its pid, process group and, once ended, exit code."""

    pid: int
    pgid: int | None = None
    create_time: float | None = None
    exit_code: int | None = None
    children: list[int] = field(default_factory=list)


@dataclass
class Attempt:
    """One run of the worker group: its rendezvous port, times, each worker's exit code and
    the workers stopped because another failed."""

    attempt: int
    port: int
    start_time: str
    exit_codes: dict[str, int | None] = field(default_factory=dict)
    stopped: list[str] = field(default_factory=list)
    end_time: str | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Attempt:
        """The attempt as status.json records it (unknown entries left out)."""
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class JobStatus:
    """The content of status.json: the job's state as its supervisor last wrote it.

    `launch` is the plan the client made (None only for a damaged job's stand-in status);
    `queue_position` and `queue_waiting` the job's place while it waits in the local queue.
    """

    uid: str
    name: str
    namespace: str
    num_workers: int
    output_dir: str
    conditions: list[JobCondition] = field(default_factory=list)
    restarts: int = 0
    creation_time: str | None = None
    start_time: str | None = None
    completion_time: str | None = None
    supervisor: ProcessRecord | None = None
    initializer: ProcessRecord | None = None
    workers: dict[str, ProcessRecord] = field(default_factory=dict)
    attempts: list[Attempt] = field(default_factory=list)
    launch: LaunchPlan | None = None
    # While the job waits in the local queue: its place (1: next) of how many wait; None once
    # admitted.
    queue_position: int | None = None
    queue_waiting: int | None = None
    updated_at: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        """The status as status.json holds it."""
        data = dataclasses.asdict(self)
        data["conditions"] = [c.to_dict() for c in self.conditions]
        data["launch"] = self.launch.to_dict() if self.launch is not None else {}
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobStatus:
        """The status `to_dict` wrote (entries it does not know are left out).

        Raises:
            TypeError, ValueError, KeyError, AttributeError: `data` is not a job status.
        """
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["conditions"] = [JobCondition.from_dict(c) for c in data.get("conditions", [])]
        for key in ("supervisor", "initializer"):
            if values.get(key) is not None:
                values[key] = ProcessRecord(**values[key])
        values["workers"] = {k: ProcessRecord(**v) for k, v in data.get("workers", {}).items()}
        values["attempts"] = [Attempt.from_dict(a) for a in data.get("attempts", [])]
        launch = data.get("launch")
        values["launch"] = LaunchPlan.from_dict(launch) if launch else None
        return cls(**values)

    @classmethod
    def from_valid_dict(cls, data: Any, path: Path) -> JobStatus:
        """`from_dict` of what a status file held; StatusDamaged naming what is wrong with it."""
        if not isinstance(data, dict):
            raise StatusDamaged(f"{path} holds {type(data).__name__}, not a job status")
        required = {
            "uid": str,
            "name": str,
            "namespace": str,
            "num_workers": int,
            "output_dir": str,
        }
        wrong = [k for k, t in required.items() if not isinstance(data.get(k), t)]
        if wrong:
            raise StatusDamaged(f"{path} is not a job status: {', '.join(wrong)} missing or wrong")
        try:
            return cls.from_dict(data)
        except (TypeError, ValueError, KeyError, AttributeError) as e:
            raise StatusDamaged(f"{path} is not a job status: {type(e).__name__}: {e}") from None

    @property
    def terminal(self) -> bool:
        """Whether the job has ended (Succeeded or Failed)."""
        return conditions.has_ended(self.conditions)

    @property
    def current(self) -> Condition:
        """The type of the latest true condition (Created when none is true)."""
        return conditions.current(self.conditions)

    def all_pids(self) -> set[int]:
        """Every pid recorded for the job (supervisor, initializer, agents, worker processes)."""
        records = [self.supervisor, self.initializer, *self.workers.values()]
        pids: set[int] = set()
        for record in records:
            if record is not None:
                pids.add(record.pid)
                pids.update(record.children)
        return pids

    def set_condition(
        self, condition_type: Condition, reason: str, message: str, stamp: str | None = None
    ) -> None:
        """Makes `condition_type` the latest true condition (`conditions.transition`); a terminal
        one also sets the completion time. `stamp`: the transition time (default: now)."""
        stamp = stamp or now_iso()
        self.conditions = conditions.transition(
            self.conditions, condition_type, reason, message, stamp
        )
        if condition_type in conditions.TERMINAL:
            self.completion_time = stamp
