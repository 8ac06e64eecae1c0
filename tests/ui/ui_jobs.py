"""Job folders of the local backend written directly (no process runs them), for the dashboard's
API tests and its benchmark: status, spec, progress, history, logs and outputs as a real job
leaves them. A "running" job names a live stand-in process (a `sleep`) as its supervisor, so the
backend does not mark it Failed; `stop_stand_ins()` ends those."""

from __future__ import annotations

import json
import math
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil

from kubetune.contract import layout
from kubetune.contract.conditions import QUEUED_REASON, Condition
from kubetune.contract.records import LaunchPlan
from kubetune.contract.spec import (
    JobSpec,
    LocalDatasetSpec,
    ModelSpec,
    TrainerSpec,
    TransformerType,
)
from kubetune.training.backends.local.jobdir import JobDir, JobStatus, ProcessRecord, job_dir

_stand_ins: list[subprocess.Popen[bytes]] = []


def stop_stand_ins() -> None:
    """Ends every stand-in supervisor process started so far."""
    while _stand_ins:
        process = _stand_ins.pop()
        process.kill()
        process.wait()


def stand_in() -> ProcessRecord:
    """A live process (a `sleep`) to name as a supervisor or controller; stop_stand_ins ends it."""
    process = subprocess.Popen(["sleep", "3600"])
    _stand_ins.append(process)
    return ProcessRecord(pid=process.pid, create_time=psutil.Process(process.pid).create_time())


def history_record(step: int, total: int, epoch_steps: int = 50) -> dict[str, Any]:
    """A plausible logged training record at `step`: a decaying noisy loss, a linear schedule."""
    return {
        "step": step,
        "epoch": round(step / epoch_steps, 4),
        "loss": round(0.3 + 2.0 * math.exp(-step / (total / 4 + 1)) + 0.05 * math.sin(step), 4),
        "learning_rate": 5e-5 * (1 - step / (total + 1)),
        "grad_norm": 1.0,
        "time": 1_700_000_000 + step,
    }


def eval_record(step: int, total: int) -> dict[str, Any]:
    loss = 0.35 + 1.8 * math.exp(-step / (total / 4 + 1))
    return {"step": step, "epoch": step / 50, "eval_loss": round(loss, 4), "eval_accuracy": 0.9}


def write_job(
    home: Path,
    name: str,
    namespace: str = "default",
    state: str = "succeeded",
    steps: int = 40,
    total_steps: int = 40,
    eval_every: int = 0,
    created_minutes_ago: float = 10.0,
    env: dict[str, str] | None = None,
    log_lines: int = 5,
) -> JobDir:
    """Writes a job folder in `state` ('running', 'succeeded', 'failed', 'queued') with `steps`
    logged records of `total_steps`; returns it."""
    job = job_dir(home, namespace, name)
    job.logs_dir.mkdir(parents=True)
    job.workspace.mkdir()
    spec = JobSpec(
        name=name,
        namespace=namespace,
        model=ModelSpec(
            uri="/models/tiny-bert", transformer_type=TransformerType.SEQUENCE_CLASSIFICATION
        ),
        dataset=LocalDatasetSpec(path="/data/train.csv"),
        trainer=TrainerSpec(training_arguments={"output_dir": "out", "logging_steps": 1}),
        num_workers=2,
        num_procs_per_worker=1,
        env=env or {},
    )
    job.spec_path.write_text(spec.to_json())
    created = datetime.now(UTC) - timedelta(minutes=created_minutes_ago)
    stamp = created.strftime("%Y-%m-%dT%H:%M:%SZ")
    output_dir = layout.output_path(job.workspace, "out")
    status = JobStatus(
        uid=uuid.uuid4().hex,
        name=name,
        namespace=namespace,
        num_workers=2,
        output_dir=str(output_dir),
        creation_time=stamp,
        launch=LaunchPlan(
            num_workers=2, procs_per_worker=1, threads=1, gpus_per_worker=0, cpus=2.0, memory=0.0
        ),
    )
    queued = state == "queued"
    status.set_condition(Condition.CREATED, QUEUED_REASON if queued else "JobCreated", "created")
    if queued:
        status.queue_position, status.queue_waiting = 1, 1
    else:
        status.start_time = stamp
        status.set_condition(Condition.RUNNING, "JobRunning", "2 worker(s) running")
    if state == "succeeded":
        status.set_condition(Condition.SUCCEEDED, "JobSucceeded", "all 2 worker(s) completed")
    elif state == "failed":
        status.set_condition(
            Condition.FAILED, "WorkerFailed", "worker-1 exited with code 1: out of memory"
        )
    elif state in ("running", "queued"):
        status.supervisor = stand_in()
    job.write_status(status)

    records: list[dict[str, Any]] = []
    for step in range(1, steps + 1):
        records.append(history_record(step, total_steps))
        if eval_every and step % eval_every == 0:
            records.append(eval_record(step, total_steps))
    if records:
        (job.workspace / layout.HISTORY_FILE).write_text(
            "".join(json.dumps(r) + "\n" for r in records)
        )
        last = [r for r in records if "loss" in r][-1]
        layout.write_json_atomic(
            job.workspace / layout.PROGRESS_FILE,
            {
                "step": steps,
                "total_steps": total_steps,
                "epoch": last["epoch"],
                "loss": last["loss"],
                "learning_rate": last["learning_rate"],
                "samples_per_second": 120.0,
                "eta_seconds": 0.0 if state == "succeeded" else (total_steps - steps) * 0.1,
                "status": "done" if state == "succeeded" else "training",
                "updated_at": 1_700_000_000,
                "restarted_from_step": None,
                "logged": last,
            },
        )
    for source in job.sources(2):
        job.log_path(source).write_text("".join(f"{source} line {i}\n" for i in range(log_lines)))
    if state == "succeeded":
        (output_dir / "model").mkdir(parents=True)
        layout.write_json_atomic(
            output_dir / "metrics.json", {"train_loss": 0.42, "eval_accuracy": 0.9}
        )
    return job


def append_records(job: JobDir, first_step: int, last_step: int, total_steps: int) -> None:
    """Logs steps first_step..last_step as the trainer would: history lines and progress."""
    records = [history_record(s, total_steps) for s in range(first_step, last_step + 1)]
    with (job.workspace / layout.HISTORY_FILE).open("a") as f:
        f.write("".join(json.dumps(r) + "\n" for r in records))
    progress = layout.read_json(job.workspace / layout.PROGRESS_FILE) or {}
    progress.update(step=last_step, loss=records[-1]["loss"], logged=records[-1])
    layout.write_json_atomic(job.workspace / layout.PROGRESS_FILE, progress)
