"""Every process of a local job dies with the process that owns it, and a failed worker is judged
from torchelastic's structured files, not from log text.

Real torchrun agents run `rank_probe` (a stand-in for the trainer that sleeps, fails or is
killed) through kubetune's entry point, with the command line and environment the supervisor
uses; no model is loaded, so these run in seconds.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from kubetune.contract.secrets import (
    MODEL_TOKEN_ENV,
    S3_ACCESS_KEY_ENV,
    S3_SECRET_KEY_ENV,
    SECRET_ENV_VARS,
)
from kubetune.training.backends.local import launch, outcomes, processes
from kubetune.training.backends.local.entry import RANK_RECORD
from kubetune.training.backends.local.jobdir import JobStatus, ProcessRecord, job_dir
from tests.local.local_jobs import wait_until

REPO = Path(__file__).resolve().parents[2]


class Agent:
    """One torchrun agent of two processes running rank_probe in `mode`, as the supervisor starts one."""

    def __init__(self, root: Path, mode: str, uid: str) -> None:
        self.folder = root / mode / "torchelastic"
        self.folder.mkdir(parents=True)
        self.log = root / mode / "worker-0.log"
        env = launch.worker_env(
            dict(os.environ),
            {"PROBE_MODE": mode, "PYTHONPATH": str(REPO)},
            gpu_slice="",
            threads=1,
            error_file=self.folder / outcomes.REPLY_FILE,
        )
        env[launch.JOB_UID_ENV] = uid
        command = launch.agent_command(
            root / "spec.json",
            root / "workspace",
            num_workers=1,
            node_rank=0,
            procs_per_worker=2,
            port=launch.free_port(),
            log_dir=self.folder,
            program=["-m", "tests.local.rank_probe"],
        )
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )

    def records(self) -> list[dict]:
        return [json.loads(p.read_text()) for p in sorted(self.folder.rglob(RANK_RECORD))]

    def report(self) -> outcomes.WorkerReport:
        return outcomes.read_report("worker-0", self.process.wait(timeout=60), self.folder)


@pytest.fixture
def probes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, str]]:
    """(a scratch folder, a job uid); TMPDIR is private to the test; leftovers are stopped."""
    tmpdir = tmp_path / "tmpdir"
    tmpdir.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmpdir))
    uid = uuid.uuid4().hex
    yield tmp_path, uid
    processes.stop_job(uid, grace=2.0)


def test_processes_die_with_their_agent_are_named_by_rank_and_judged_from_error_files(probes):
    root, uid = probes
    sleeping = Agent(root, "sleep", uid)
    failing = Agent(root, "fail", uid)
    killed = Agent(root, "killed", uid)

    # Each line a process prints names its rank in the worker log.
    def both_ranks_printed() -> bool:
        lines = sleeping.log.read_text().splitlines()
        return "[rank0] probe rank 0 started" in lines and "[rank1] probe rank 1 started" in lines

    wait_until(both_ranks_printed, 60, "both ranks' first line in the worker log")

    # kill -9 of an agent: its processes die with it (nothing trains on for a lost worker).
    wait_until(lambda: len(sleeping.records()) == 2, 60, "both ranks of the agent to start")
    ranks = [r["pid"] for r in sleeping.records()]
    assert all(processes.is_alive(pid) for pid in ranks)
    sleeping.process.send_signal(signal.SIGKILL)
    wait_until(
        lambda: not [pid for pid in ranks if processes.is_alive(pid)],
        30,
        "the agent's processes to die with it",
    )
    verdict = outcomes.judge(sleeping.report())
    assert verdict.retryable and "killed by SIGKILL" in verdict.reason

    # A process's own error (exit code 3): permanent; the agent stopped its peer (recorded).
    report = failing.report()
    assert report.exit_code == 1 and report.reply is not None
    assert report.reply["errorCode"] == 3 and "exited with code 3" in report.reply["message"]
    assert {(r.rank, r.exitcode, r.stopped) for r in report.ranks} == {
        (0, 143, True),
        (1, 3, False),
    }
    assert not outcomes.judge(report).retryable

    # A process killed by a signal is the root cause, even when its peer's error came first.
    report = killed.report()
    assert [(r.rank, r.exitcode) for r in report.ranks][1] == (1, None)
    verdict = outcomes.judge(report)
    assert verdict.retryable and "rank 1" in verdict.reason and "killed" in verdict.reason

    # torchrun's folders stay in the folder given to it (the job's), none in the temp folder.
    assert list(sleeping.folder.glob("*/attempt_0"))
    assert not list(Path(os.environ["TMPDIR"]).glob("torchelastic_*"))


@pytest.mark.parametrize(
    ("report", "retryable"),
    [
        (outcomes.WorkerReport("worker-0", -9), True),  # the agent itself was killed
        (outcomes.WorkerReport("worker-0", 1, {"message": "x", "errorCode": 1}), False),
        (outcomes.WorkerReport("worker-0", 1, {"message": "x", "errorCode": -9}), True),
        (outcomes.WorkerReport("worker-0", 1, {"message": "oom", "errorCode": 137}), True),
        (outcomes.WorkerReport("worker-0", 1, {"message": "RendezvousError: x"}), True),
        (outcomes.WorkerReport("worker-0", 1), True),  # failed without any report: a signal
        (  # a peer's error reached the reply file first, but rank 1 was killed: the root cause
            outcomes.WorkerReport(
                "worker-0",
                1,
                {"message": "lost my peer", "errorCode": 1},
                [outcomes.RankEnd(0, 10, 1), outcomes.RankEnd(1, 11, None)],
            ),
            True,
        ),
        (
            outcomes.WorkerReport(
                "worker-0",
                1,
                {"message": "x", "errorCode": 1},
                [outcomes.RankEnd(0, 10, 1), outcomes.RankEnd(1, 11, 143, stopped=True)],
            ),
            False,
        ),
    ],
)
def test_verdicts(report, retryable):
    assert outcomes.judge(report).retryable is retryable


def test_secrets_go_to_the_storage_initializer_only(monkeypatch):
    secrets = {MODEL_TOKEN_ENV: "hf_x", S3_ACCESS_KEY_ENV: "AK", S3_SECRET_KEY_ENV: "SK"}
    base = {"PATH": "/bin", MODEL_TOKEN_ENV: "inherited"}
    initializer = launch.initializer_env(base, {"A": "1"}, secrets)
    assert {k: initializer[k] for k in secrets} == secrets and initializer["A"] == "1"
    worker = launch.worker_env(base, {}, gpu_slice="", threads=1, secrets=secrets)
    assert not set(SECRET_ENV_VARS) & set(worker)
    # A secret marked for the trainer reaches the workers too (and not the initializer).
    monkeypatch.setattr(launch, "TRAINER_SECRET_ENV_VARS", (MODEL_TOKEN_ENV,))
    worker = launch.worker_env(base, {}, gpu_slice="", threads=1, secrets=secrets)
    assert worker[MODEL_TOKEN_ENV] == "hf_x" and S3_ACCESS_KEY_ENV not in worker
    assert MODEL_TOKEN_ENV not in launch.initializer_env(base, {}, secrets)


def test_reading_a_job_whose_supervisor_died_stops_what_is_left_and_writes_nothing(home):
    from kubetune.training.backends.local.backend import LocalBackend

    dead = subprocess.Popen(["true"])
    dead.wait()
    uid = uuid.uuid4().hex
    job = job_dir(home, "default", "orphaned")
    job.logs_dir.mkdir(parents=True)
    status = JobStatus(
        uid=uid, name="orphaned", namespace="default", num_workers=1, output_dir="/o"
    )
    status.supervisor = ProcessRecord(pid=dead.pid, create_time=None)
    status.set_condition("Created", "JobCreated", "")
    status.set_condition("Running", "WorkersRunning", "")
    job.write_status(status)
    written = job.status_path.read_bytes()
    # A worker that outlived its supervisor (as one re-parented elsewhere would).
    leftover = subprocess.Popen(
        ["sleep", "600"], env={**os.environ, launch.JOB_UID_ENV: uid}, start_new_session=True
    )
    try:
        got = LocalBackend(home=home).get_job("orphaned", "default")
        assert got.status == "Failed" and got.conditions[-1].reason == "SupervisorLost"
        assert leftover.wait(timeout=30) is not None, "the leftover process was stopped"
        assert job.status_path.read_bytes() == written  # reading wrote nothing
        again = LocalBackend(home=home).get_job("orphaned", "default")
        assert again.conditions[-1].last_transition_time == got.conditions[-1].last_transition_time
    finally:
        if leftover.poll() is None:
            leftover.kill()
            leftover.wait()


def test_children_of_the_supervisor_die_with_it(tmp_path):
    # The supervisor's preexec function, on a parent that is then SIGKILLed.
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import os, subprocess, sys, time\n"
            "from kubetune.training.backends.local import processes\n"
            "child = subprocess.Popen(['sleep', '600'], start_new_session=True,"
            " preexec_fn=processes.die_with_parent(os.getpid()))\n"
            "print(child.pid, flush=True)\n"
            "time.sleep(600)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    try:
        assert processes.is_alive(child)
        parent.kill()
        parent.wait()
        wait_until(lambda: not processes.is_alive(child), 30, "the child to die with its parent")
    finally:
        if psutil.pid_exists(child):
            os.kill(child, signal.SIGKILL)
