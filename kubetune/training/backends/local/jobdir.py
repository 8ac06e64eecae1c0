"""Where a local job lives on disk, and its status file.

```
$KUBETUNE_HOME/jobs/<namespace>/<name>/      ($KUBETUNE_HOME defaults to ~/.kubetune)
  spec.json          the JobSpec (no secrets)
  status.json        conditions, restarts, process ids, exit codes, times (written by the supervisor)
  logs/
    supervisor.log   what the supervisor itself reports
    initializer.log  the storage initializer's output
    worker-0.log     torchrun agent 0 and its processes (one file per simulated node)
  workspace/         model/, dataset/, outputs/, progress.json (see kubetune.workspace)
```
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubetune import validation, workspace
from kubetune.training import job as conditions
from kubetune.training.job import JobCondition

HOME_ENV = "KUBETUNE_HOME"
JOBS_DIR = "jobs"
KEPT_OUTPUTS_DIR = "kept-outputs"
SPEC_FILE = "spec.json"
STATUS_FILE = "status.json"
LOGS_DIR = "logs"
WORKSPACE_DIR = "workspace"
SUPERVISOR_LOG = "supervisor.log"
INITIALIZER = "initializer"


def default_home() -> Path:
    """$KUBETUNE_HOME, or ~/.kubetune."""
    return Path(os.environ.get(HOME_ENV) or Path.home() / ".kubetune").expanduser()


def now_iso() -> str:
    """The current UTC time as Kubernetes writes it: 2026-01-31T12:00:00Z."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def worker_source(index: int) -> str:
    """The log source name of worker (simulated node) `index`: 'worker-0', 'worker-1', ..."""
    return f"worker-{index}"


@dataclass(frozen=True)
class JobDir:
    """The paths of one job's directory."""

    path: Path

    @property
    def spec_path(self) -> Path:
        return self.path / SPEC_FILE

    @property
    def status_path(self) -> Path:
        return self.path / STATUS_FILE

    @property
    def logs_dir(self) -> Path:
        return self.path / LOGS_DIR

    @property
    def workspace(self) -> Path:
        return self.path / WORKSPACE_DIR

    @property
    def supervisor_log(self) -> Path:
        return self.logs_dir / SUPERVISOR_LOG

    def log_path(self, source: str) -> Path:
        """The log file of `source` ('initializer', 'worker-0', ...)."""
        return self.logs_dir / f"{source}.log"

    def sources(self, num_workers: int) -> list[str]:
        """The log sources of a job with `num_workers` workers, initializer first."""
        return [INITIALIZER, *(worker_source(i) for i in range(num_workers))]

    def exists(self) -> bool:
        return self.status_path.is_file()

    def read_status(self) -> JobStatus | None:
        """The status file's content, or None when the job directory is gone."""
        data = workspace.read_json(self.status_path)
        if data is None:
            # A half-written file cannot happen (atomic writes); a missing one means the job is gone.
            return None
        return JobStatus.from_dict(data)

    def write_status(self, status: JobStatus) -> None:
        workspace.write_json_atomic(self.status_path, status.to_dict())


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
    return home / KEPT_OUTPUTS_DIR / namespace / f"{name}-{uid[:8]}"


@dataclass
class ProcessRecord:
    """One process the supervisor started: its pid, process group and, once ended, exit code."""

    pid: int
    pgid: int | None = None
    create_time: float | None = None
    exit_code: int | None = None
    children: list[int] = field(default_factory=list)


@dataclass
class JobStatus:
    """The content of status.json: the job's state as its supervisor last wrote it."""

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
    attempts: list[dict[str, Any]] = field(default_factory=list)
    launch: dict[str, Any] = field(default_factory=dict)
    updated_at: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["conditions"] = [c.to_dict() for c in self.conditions]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobStatus:
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["conditions"] = [JobCondition.from_dict(c) for c in data.get("conditions", [])]
        for key in ("supervisor", "initializer"):
            if values.get(key) is not None:
                values[key] = ProcessRecord(**values[key])
        values["workers"] = {k: ProcessRecord(**v) for k, v in data.get("workers", {}).items()}
        return cls(**values)

    @property
    def terminal(self) -> bool:
        """Whether the job has ended (Succeeded or Failed)."""
        return any(c.type in conditions.TERMINAL and c.status == "True" for c in self.conditions)

    def all_pids(self) -> set[int]:
        """Every pid recorded for the job (supervisor, initializer, agents, worker processes)."""
        records = [self.supervisor, self.initializer, *self.workers.values()]
        pids: set[int] = set()
        for record in records:
            if record is not None:
                pids.add(record.pid)
                pids.update(record.children)
        return pids

    def set_condition(self, condition_type: str, reason: str, message: str) -> None:
        """Makes `condition_type` the latest true condition, as the Training Operator does.

        A condition of the same type is replaced; Running and Restarting exclude each other, and
        a terminal condition turns both off.
        """
        stamp = now_iso()
        excluded = {
            conditions.RUNNING: {conditions.RESTARTING},
            conditions.RESTARTING: {conditions.RUNNING},
            conditions.SUCCEEDED: {conditions.RUNNING, conditions.RESTARTING},
            conditions.FAILED: {conditions.RUNNING, conditions.RESTARTING},
        }.get(condition_type, set())
        kept = []
        for c in self.conditions:
            if c.type == condition_type:
                continue
            if c.type in excluded and c.status == "True":
                c = dataclasses.replace(c, status="False", last_transition_time=stamp)
            kept.append(c)
        kept.append(JobCondition(condition_type, "True", reason, message, stamp))
        self.conditions = kept
        if condition_type in conditions.TERMINAL:
            self.completion_time = stamp
