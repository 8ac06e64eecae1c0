"""The detached process that runs one local job: `python -m kubetune.training.backends.local.supervisor JOBDIR`.

It runs the storage initializer, then `num_workers` torchrun agents, records what happens in
JOBDIR/status.json and ends with Succeeded or Failed. A failed worker group is restarted from
its last checkpoint up to `max_restarts` times when a process was killed or crashed by a signal,
or the rendezvous port was taken (exit codes 1-127 are permanent errors, as the Training
Operator's ExitCode restart policy has it: a bad column name does not get better by retrying). Secrets reach it, and through it the
initializer and workers, only in the environment.

Started by `LocalBackend.create_job`; the command forks once: the parent returns as soon as the
supervisor has recorded itself, the child runs on, re-parented away from the caller.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import IO

import psutil

from kubetune.training import job as conditions
from kubetune.training.backends.local import function_jobs, launch, logs, pods, processes
from kubetune.training.backends.local.jobdir import (
    INITIALIZER,
    JobDir,
    ProcessRecord,
    worker_source,
)
from kubetune.training.spec import JobSpec

logger = logging.getLogger("kubetune.supervisor")

POLL_INTERVAL = 0.2
# How long the other workers get to end by themselves once one has failed, before they are stopped.
FAILURE_GRACE = 5.0
STOP_GRACE = 10.0


class Stopped(Exception):
    """The supervisor was asked to stop (SIGTERM, SIGINT, SIGHUP)."""


@dataclass
class AttemptOutcome:
    """How one run of the worker group ended."""

    succeeded: bool
    retryable: bool = False
    source: str = ""
    reason: str = ""


class Supervisor:
    """Runs the job in `job` to its end, writing status.json as it goes."""

    def __init__(self, job: JobDir) -> None:
        self.job = job
        self.spec = JobSpec.from_json(job.spec_path.read_text())
        status = job.read_status()
        if status is None:
            raise RuntimeError(f"{job.status_path} is missing")
        self.status = status
        self.stop_signal: int | None = None
        self.popens: dict[str, subprocess.Popen[bytes]] = {}
        self.log_files: list[IO[bytes]] = []

    # --- lifecycle -----------------------------------------------------------------------------

    def run(self, ready: Callable[[], None] | None = None) -> int:
        """Runs the job; calls `ready()` once the supervisor is recorded. Returns the exit code."""
        processes.become_subreaper()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, self._on_signal)
        me = psutil.Process()
        self.status.supervisor = ProcessRecord(
            pid=me.pid, pgid=os.getpgid(0), create_time=me.create_time()
        )
        self.status.start_time = _now()
        self.write()
        if ready is not None:
            ready()
        logger.info("supervising job %s/%s", self.spec.namespace, self.spec.name)
        try:
            if self.initialize():
                self.train()
        except Stopped:
            self.stop_all()
            name = signal.Signals(self.stop_signal or signal.SIGTERM).name
            self.fail("Stopped", f"the job's supervisor received {name} and stopped the job")
        except Exception as e:
            logger.exception("supervisor error")
            self.stop_all()
            self.fail("SupervisorError", f"the job's supervisor failed: {type(e).__name__}: {e}")
        finally:
            self.stop_all()
            for f in self.log_files:
                f.close()
        logger.info("job %s/%s ended: %s", self.spec.namespace, self.spec.name, self.status_type())
        return 0

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stop_signal = signum

    def check_stop(self) -> None:
        if self.stop_signal is not None:
            raise Stopped()

    def write(self) -> None:
        self.status.updated_at = time.time()
        self.job.write_status(self.status)

    def status_type(self) -> str:
        true = [c for c in self.status.conditions if c.status == "True"]
        return true[-1].type if true else conditions.CREATED

    def fail(self, reason: str, message: str) -> None:
        logger.info("failed (%s): %s", reason, message)
        self.status.set_condition(conditions.FAILED, reason, message)
        self.write()

    # --- storage initializer ---------------------------------------------------------------------

    def initialize(self) -> bool:
        """Runs the storage initializer; False (job failed) when it fails."""
        env = {**os.environ, **self.spec.init_env, "PYTHONUNBUFFERED": "1"}
        command = function_jobs.init_command(
            self.spec, self.job.spec_path, self.job.workspace
        ) or launch.initializer_command(self.job.spec_path, self.job.workspace)
        proc = self.start(INITIALIZER, command, env)
        self.status.initializer = _record(proc)
        self.write()
        code = self.wait(proc)
        self.status.initializer.exit_code = code
        self.write()
        if code != 0:
            reason = logs.failure_reason(self.job.log_path(INITIALIZER))
            step = "package installation" if self.spec.function else "storage initializer"
            self.fail("InitializerFailed", f"{step} exited with code {code}: {reason}")
            return False
        return True

    # --- worker group ----------------------------------------------------------------------------

    def train(self) -> None:
        """Runs the worker group, restarting it after a crash, until it succeeds or fails."""
        limit = self.spec.max_restarts
        for attempt in range(limit + 1):
            outcome = self.run_attempt(attempt)
            if outcome.succeeded:
                self.status.set_condition(
                    conditions.SUCCEEDED,
                    "JobSucceeded",
                    f"all {self.spec.num_workers} worker(s) completed; outputs in {self.status.output_dir}",
                )
                self.write()
                return
            message = f"{outcome.source} failed: {outcome.reason}"
            if not outcome.retryable:
                self.fail("WorkerFailed", message)
                return
            if attempt == limit:
                self.fail(
                    "BackoffLimitExceeded",
                    f"{message} (after {limit} restart(s); max_restarts={limit})",
                )
                return
            self.status.restarts += 1
            self.status.set_condition(
                conditions.RESTARTING,
                "WorkerRestarting",
                f"{message}; restart {self.status.restarts}/{limit} from the last checkpoint",
            )
            self.write()

    def run_attempt(self, attempt: int) -> AttemptOutcome:
        """Starts every torchrun agent and waits until all succeed or one fails."""
        spec = self.spec
        port = launch.free_port()
        launch_plan = self.status.launch
        offsets: dict[str, int] = {}
        agents: dict[str, subprocess.Popen[bytes]] = {}
        for i in range(spec.num_workers):
            source = worker_source(i)
            log_path = self.job.log_path(source)
            offsets[source] = log_path.stat().st_size if log_path.exists() else 0
            if attempt:
                _append(log_path, f"[kubetune] restart {attempt}: starting {source} again\n")
            pod_env = pods.operator_env(spec.num_workers, i, spec.num_procs_per_worker, port)
            env = launch.worker_env(
                {**os.environ, **pod_env},
                spec.env,
                gpu_slice=launch_plan["gpu_slices"][i],
                threads=launch_plan["threads"],
            )
            command = launch.agent_command(
                self.job.spec_path,
                self.job.workspace,
                num_workers=spec.num_workers,
                node_rank=i,
                procs_per_worker=spec.num_procs_per_worker,
                port=port,
                program=function_jobs.worker_program(spec, self.job.spec_path, self.job.workspace),
            )
            agents[source] = self.start(source, command, env)
            self.status.workers[source] = _record(agents[source])
        self.status.attempts.append(
            {"attempt": attempt, "port": port, "start_time": _now(), "exit_codes": {}}
        )
        self.status.set_condition(
            conditions.RUNNING,
            "WorkersRunning",
            f"{spec.num_workers} worker(s) x {spec.num_procs_per_worker} process(es) running"
            + (f" (restart {attempt})" if attempt else ""),
        )
        self.write()
        logger.info("attempt %d: %d agent(s), rendezvous port %d", attempt, len(agents), port)

        failed: list[str] = []
        last_scan = 0.0
        while True:
            self.check_stop()
            codes = {source: proc.poll() for source, proc in agents.items()}
            failed = [s for s, c in codes.items() if c not in (None, 0)]
            if failed or all(c == 0 for c in codes.values()):
                break
            if time.monotonic() - last_scan > 1.0:
                self.record_children(agents)
                last_scan = time.monotonic()
            processes.reap_children(skip=self._popen_pids())
            time.sleep(POLL_INTERVAL)

        if not failed:
            self.record_exit_codes(agents, stopped=set())
            return AttemptOutcome(succeeded=True)

        # Let the other agents notice the failure and report it themselves, then stop the rest.
        deadline = time.monotonic() + FAILURE_GRACE
        while time.monotonic() < deadline and any(p.poll() is None for p in agents.values()):
            self.check_stop()
            time.sleep(POLL_INTERVAL)
        stopped = {s for s, p in agents.items() if p.poll() is None}
        self.stop_all()
        self.record_exit_codes(agents, stopped)
        failures = [s for s, p in agents.items() if s not in stopped and p.returncode != 0]
        # A process killed by a signal (or a port taken) is the root cause the others followed.
        retryable = [
            s
            for s in failures
            if _signal_code(agents[s].returncode)
            or logs.retryable_failure(self.job.log_path(s), offsets[s])
        ]
        root = retryable[0] if retryable else failed[0]
        reason = logs.failure_reason(self.job.log_path(root), offsets[root])
        return AttemptOutcome(
            succeeded=False, retryable=bool(retryable), source=root, reason=reason
        )

    def record_children(self, agents: dict[str, subprocess.Popen[bytes]]) -> None:
        """Records the pids of each agent's worker processes in status.json when they change."""
        changed = False
        for source, proc in agents.items():
            record = self.status.workers[source]
            children = processes.descendants(proc.pid)
            if children and sorted(children) != sorted(record.children):
                record.children = sorted(set(record.children) | set(children))
                changed = True
        if changed:
            self.write()

    def record_exit_codes(
        self, agents: dict[str, subprocess.Popen[bytes]], stopped: set[str]
    ) -> None:
        attempt = self.status.attempts[-1]
        for source, proc in agents.items():
            self.status.workers[source].exit_code = proc.returncode
            attempt["exit_codes"][source] = proc.returncode
        attempt["stopped"] = sorted(stopped)
        attempt["end_time"] = _now()
        self.write()

    # --- processes -------------------------------------------------------------------------------

    def start(
        self, source: str, command: list[str], env: dict[str, str]
    ) -> subprocess.Popen[bytes]:
        """Starts one process in its own session, its output appended to its log."""
        log = self.job.log_path(source).open("ab")
        self.log_files.append(log)
        proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=self.job.path,
            start_new_session=True,
        )
        self.popens[f"{source}:{proc.pid}"] = proc
        return proc

    def wait(self, proc: subprocess.Popen[bytes]) -> int:
        while proc.poll() is None:
            self.check_stop()
            time.sleep(POLL_INTERVAL)
        return proc.returncode

    def _popen_pids(self) -> set[int]:
        return {p.pid for p in self.popens.values()}

    def stop_all(self) -> None:
        """Stops every process of the job but this one: SIGTERM, a grace period, SIGKILL; reaps."""
        targets = processes.job_processes(self.status.uid)
        targets += [
            psutil.Process(p.pid)
            for p in self.popens.values()
            if p.poll() is None and p.pid not in {t.pid for t in targets}
        ]
        if targets:
            processes.signal_processes(targets, signal.SIGTERM)
            deadline = time.monotonic() + STOP_GRACE
            while time.monotonic() < deadline:
                for p in self.popens.values():
                    p.poll()
                processes.reap_children(skip=self._popen_pids())
                if not any(processes.is_running(t) for t in targets):
                    break
                time.sleep(0.1)
            left = [t for t in targets if processes.is_running(t)]
            if left:
                processes.signal_processes(left, signal.SIGKILL)
        for p in self.popens.values():
            p.wait()
        processes.reap_children(skip=self._popen_pids())


def _record(proc: subprocess.Popen[bytes]) -> ProcessRecord:
    try:
        create_time: float | None = psutil.Process(proc.pid).create_time()
    except psutil.Error:
        create_time = None
    return ProcessRecord(pid=proc.pid, pgid=proc.pid, create_time=create_time)


def _signal_code(code: int | None) -> bool:
    return code is not None and (code < 0 or code >= 128)


def _append(path: Path, text: str) -> None:
    with path.open("a") as f:
        f.write(text)


def _now() -> str:
    from kubetune.training.backends.local.jobdir import now_iso

    return now_iso()


def main(argv: list[str] | None = None) -> int:
    """Forks; the parent exits 0 once the child (the supervisor) has recorded itself."""
    parser = argparse.ArgumentParser(prog="python -m kubetune.training.backends.local.supervisor")
    parser.add_argument("jobdir", type=Path, help="the job directory (spec.json, status.json)")
    args = parser.parse_args(argv)
    job = JobDir(args.jobdir.resolve())

    read_fd, write_fd = os.pipe()
    if os.fork():
        os.close(write_fd)
        answer = os.read(read_fd, 16)  # empty when the child ended before it was ready
        return 0 if answer == b"ready" else 1
    os.close(read_fd)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(name)s: %(message)s",
        stream=sys.stderr,
    )

    def ready() -> None:
        os.write(write_fd, b"ready")
        os.close(write_fd)

    return Supervisor(job).run(ready)


if __name__ == "__main__":
    sys.exit(main())
