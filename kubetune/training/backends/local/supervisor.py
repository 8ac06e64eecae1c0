"""The detached process that runs one local job: `python -m kubetune.training.backends.local.supervisor JOBDIR`.

It waits for its turn in the local queue (jobqueue.py: the machine's CPU cores, memory and GPUs,
first come first served), runs the storage initializer, then `num_workers` torchrun agents,
records what happens in JOBDIR/status.json and ends with Succeeded or Failed. A failed worker
group is restarted from its last checkpoint up to `max_restarts` times when a process was killed
or crashed (a signal, an exit code of 128 or more) or a torchrun agent failed, as torchelastic's
error files and kubetune's rank records tell (outcomes.py); exit codes 1-127 are permanent
errors, as the Training Operator's ExitCode restart policy has it: a bad column name does not
get better by retrying.

Secrets reach it as JSON on its standard input (never argv, a file or its environment); it
hands them, as environment variables, only to the process that needs them: the storage
initializer (and the runtime for contract.secrets.TRAINER_SECRET_ENV_VARS). A step that fails
says why in a FailureRecord (contract.records); its log is quoted only when it wrote none. Every process it starts is
killed by the kernel if the supervisor dies, and each training process dies with its torchrun
agent (entry.py). On a full disk it stops the job and records Failed with the reason, first
freeing the space it set aside at start (JobDir.reserve_path), retrying until the write lands.

Started by `LocalBackend.create_job`; the command forks once: the parent returns as soon as the
supervisor has recorded itself (queued or admitted), the child runs on, re-parented away from
the caller, its output appended to logs/supervisor.log.
"""

from __future__ import annotations

import argparse
import errno
import json
import logging
import os
import shutil
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

from kubetune.contract.conditions import QUEUED_REASON, Condition
from kubetune.contract.records import read_failure
from kubetune.contract.spec import JobSpec
from kubetune.training.backends.local import (
    function_jobs,
    jobqueue,
    launch,
    logs,
    outcomes,
    pods,
    processes,
)
from kubetune.training.backends.local.jobdir import (
    INITIALIZER,
    Attempt,
    JobDir,
    ProcessRecord,
    now_iso,
    worker_source,
)

logger = logging.getLogger("kubetune.supervisor")

POLL_INTERVAL = 0.2
QUEUE_POLL_INTERVAL = 0.5
# How long the other workers get to end by themselves once one has failed, before they are stopped.
FAILURE_GRACE = 5.0
STOP_GRACE = 10.0
# Set aside at start, freed to record the job's end when the disk is full (incompressible bytes).
RESERVE_BYTES = 256 * 1024
# Below this much free space on the job's disk, a failure is put down to the full disk.
DISK_FULL_BYTES = 1024 * 1024


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

    def __init__(self, job: JobDir, secrets: dict[str, str] | None = None) -> None:
        self.job = job
        self.spec = JobSpec.from_json(job.spec_path.read_text())
        status = job.read_status()
        if status is None:
            raise RuntimeError(f"{job.status_path} is missing")
        self.status = status
        self.secrets = dict(secrets or {})
        if status.launch is None:
            raise RuntimeError(f"{job.status_path} has no launch plan")
        self.plan = status.launch
        self.queue = jobqueue.LocalQueue(job.home)
        self.machine = jobqueue.this_machine()
        self.entry: jobqueue.Entry | None = None
        self.gpu_slices = self.plan.slices([])
        self.stop_signal: int | None = None
        self.popens: dict[str, subprocess.Popen[bytes]] = {}
        self.log_files: list[IO[bytes]] = []

    # --- lifecycle -----------------------------------------------------------------------------

    def run(
        self, ready: Callable[[], None] | None = None, failed: Callable[[str], None] | None = None
    ) -> int:
        """Runs the job; calls `ready()` once the supervisor is recorded and queued (or
        `failed(reason)` when it cannot get that far). Returns the exit code."""
        try:
            decision = self.start_up()
        except Exception as e:
            logger.exception("the supervisor could not start")
            if self.entry is not None:
                self._forget_queue_entry()
            if failed is not None:
                failed(_describe(e))
            return 1
        if ready is not None:
            ready()
        logger.info("supervising job %s/%s", self.spec.namespace, self.spec.name)
        try:
            if self.wait_for_admission(decision) and self.initialize():
                self.train()
        except Stopped:
            self.stop_all()
            name = signal.Signals(self.stop_signal or signal.SIGTERM).name
            self.end_failed("Stopped", f"the job's supervisor received {name} and stopped the job")
        except OSError as e:
            logger.exception("supervisor error")
            self.stop_all()
            full = e.errno == errno.ENOSPC or self.disk_full()
            self.end_failed(
                "DiskFull" if full else "SupervisorError",
                f"the job's supervisor could not write its status or the local queue: {_describe(e)}"
                + (f"; {self.disk_full_note()}" if full else ""),
            )
        except Exception as e:
            logger.exception("supervisor error")
            self.stop_all()
            self.end_failed("SupervisorError", f"the job's supervisor failed: {_describe(e)}")
        finally:
            self.stop_all()
            self.record_end()
            self._forget_queue_entry()
            self.job.reserve_path.unlink(missing_ok=True)
            for f in self.log_files:
                f.close()
        logger.info("job %s/%s ended: %s", self.spec.namespace, self.spec.name, self.status.current)
        return 0

    def start_up(self) -> jobqueue.Decision:
        """Records the supervisor, sets disk space aside and takes a place in the local queue."""
        processes.become_subreaper()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, self._on_signal)
        me = psutil.Process()
        self.status.supervisor = ProcessRecord(
            pid=me.pid, pgid=os.getpgid(0), create_time=me.create_time()
        )
        self.job.reserve_path.write_bytes(os.urandom(RESERVE_BYTES))
        self.entry = jobqueue.Entry(
            uid=self.status.uid,
            namespace=self.spec.namespace,
            name=self.spec.name,
            pid=me.pid,
            create_time=me.create_time(),
            cpus=self.plan.cpus,
            memory=self.plan.memory,
            gpus=self.plan.gpus,
        )
        decision = self.queue.poll(self.entry, self.machine)
        if not decision.admitted:
            self.show_queued(decision)
        self.write()
        return decision

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stop_signal = signum

    def check_stop(self) -> None:
        """Returns when no stop was asked for.

        Raises:
            Stopped: a stop signal arrived.
        """
        if self.stop_signal is not None:
            raise Stopped()

    def write(self) -> None:
        """Writes status.json now.

        Raises:
            OSError: it cannot be written (a full disk).
        """
        self.status.updated_at = time.time()
        self.job.write_status(self.status)

    def fail(self, reason: str, message: str) -> None:
        """Makes the job Failed with `reason` and `message`, and writes it."""
        logger.info("failed (%s): %s", reason, message)
        self.status.set_condition(Condition.FAILED, reason, message)
        self.write()

    def end_failed(self, reason: str, message: str) -> None:
        """Marks the job Failed unless it already ended (its result stands; `record_end` writes it)."""
        if self.status.terminal:
            return
        logger.info("failed (%s): %s", reason, message)
        self.status.set_condition(Condition.FAILED, reason, message)

    def record_end(self) -> None:
        """Writes the final status, freeing the reserved space if it must, retrying until it lands.

        Gives up only when asked to stop (`delete` stops a supervisor stuck on a full disk).
        """
        delay = 0.5
        while True:
            try:
                self.write()
                return
            except OSError as e:
                if self.job.reserve_path.exists():
                    self.job.reserve_path.unlink(missing_ok=True)
                    continue
                logger.warning("cannot record the job's end yet (%s); retrying", _describe(e))
                if not self.job.path.is_dir():
                    return  # the job folder is gone: nothing to record into
            if self.stop_signal is not None and self.status.terminal and delay > 1:
                return
            time.sleep(delay)
            delay = min(delay * 2, 30.0)

    def disk_full(self) -> bool:
        """Whether the disk of the job folder is (nearly) full."""
        try:
            return shutil.disk_usage(self.job.path).free < DISK_FULL_BYTES
        except OSError:
            return False

    def disk_full_note(self) -> str:
        """What a failure message adds when the disk is full."""
        return f"the disk holding {self.job.path} is full: free space, then start the job again"

    # --- the local queue -------------------------------------------------------------------------

    def show_queued(self, decision: jobqueue.Decision) -> None:
        """Records the job's place in the local queue (condition Created, reason Queued)."""
        self.status.queue_position = decision.place
        self.status.queue_waiting = decision.waiting
        self.status.set_condition(
            Condition.CREATED, QUEUED_REASON, jobqueue.queued_message(decision)
        )

    def wait_for_admission(self, decision: jobqueue.Decision) -> bool:
        """Waits in the local queue until the job may start (False: it never can, job failed)."""
        assert self.entry is not None
        shown = self.status.conditions[-1].message if not decision.admitted else ""
        waited = time.time()
        while not decision.admitted:
            if decision.never:
                self.fail("Unschedulable", f"this machine cannot run the job: {decision.never}")
                return False
            message = jobqueue.queued_message(decision)
            if message != shown:
                self.show_queued(decision)
                self.write()
                shown = message
            self.sleep(QUEUE_POLL_INTERVAL)
            decision = self.queue.poll(self.entry, self.machine)
        self.gpu_slices = self.plan.slices(decision.gpu_ids)
        self.status.queue_position = self.status.queue_waiting = None
        self.plan.gpu_ids, self.plan.gpu_slices = list(decision.gpu_ids), list(self.gpu_slices)
        waited = time.time() - waited
        self.status.set_condition(
            Condition.CREATED,
            "JobCreated",
            f"job {self.spec.namespace}/{self.spec.name} created"
            + (f"; started after {waited:.0f} s in the local queue" if shown else ""),
        )
        self.status.start_time = now_iso()
        self.write()
        logger.info("admitted by the local queue (GPUs: %s)", decision.gpu_ids or "none")
        return True

    def sleep(self, seconds: float) -> None:
        """Waits `seconds`, stopping early when asked to stop.

        Raises:
            Stopped: a stop signal arrived.
        """
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.check_stop()
            time.sleep(min(POLL_INTERVAL, max(deadline - time.monotonic(), 0.0)))
        self.check_stop()

    def _forget_queue_entry(self) -> None:
        try:
            self.queue.remove(self.status.uid)
        except OSError as e:  # the next supervisor that looks drops it (this one is gone by then)
            logger.warning("could not leave the local queue: %s", _describe(e))

    # --- storage initializer ---------------------------------------------------------------------

    def initialize(self) -> bool:
        """Runs the storage initializer; False (job failed) when it fails."""
        failure_file = self.job.failure_path(INITIALIZER)
        failure_file.unlink(missing_ok=True)
        env = launch.initializer_env(
            os.environ,
            self.spec.init_env,
            self.secrets,
            threads=max(1, int(self.plan.cpus)),
            failure_file=failure_file,
        )
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
            failure = read_failure(failure_file)
            reason = (
                failure.line
                if failure is not None
                else logs.failure_reason(self.job.log_path(INITIALIZER))
            )
            if self.disk_full():
                reason += f"; {self.disk_full_note()}"
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
                    Condition.SUCCEEDED,
                    "JobSucceeded",
                    f"all {self.spec.num_workers} worker(s) completed; outputs in {self.status.output_dir}",
                )
                self.write()
                return
            message = f"{outcome.source} failed: {outcome.reason}"
            if self.disk_full():
                self.fail("DiskFull", f"{message}; {self.disk_full_note()}")
                return
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
                Condition.RESTARTING,
                "WorkerRestarting",
                f"{message}; restart {self.status.restarts}/{limit} from the last checkpoint",
            )
            self.write()

    def run_attempt(self, attempt: int) -> AttemptOutcome:
        """Starts every torchrun agent and waits until all succeed or one fails."""
        spec = self.spec
        port = launch.free_port()
        agents: dict[str, subprocess.Popen[bytes]] = {}
        for i in range(spec.num_workers):
            source = worker_source(i)
            log_path = self.job.log_path(source)
            if attempt:
                _append(log_path, f"[kubetune] restart {attempt}: starting {source} again\n")
            pod_env = pods.operator_env(spec.num_workers, i, spec.num_procs_per_worker, port)
            folder = self.job.torchelastic_dir(attempt, source)
            folder.mkdir(parents=True, exist_ok=True)
            env = launch.worker_env(
                {**os.environ, **pod_env},
                spec.env,
                gpu_slice=self.gpu_slices[i],
                threads=self.plan.threads,
                error_file=folder / outcomes.REPLY_FILE,
                secrets=self.secrets,
            )
            command = launch.agent_command(
                self.job.spec_path,
                self.job.workspace,
                num_workers=spec.num_workers,
                node_rank=i,
                procs_per_worker=spec.num_procs_per_worker,
                port=port,
                log_dir=folder,
                program=function_jobs.worker_program(spec, self.job.spec_path, self.job.workspace),
            )
            agents[source] = self.start(source, command, env)
            self.status.workers[source] = _record(agents[source])
        self.status.attempts.append(Attempt(attempt=attempt, port=port, start_time=_now()))
        self.status.set_condition(
            Condition.RUNNING,
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
            self.drop_rank_output(attempt)
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
        verdicts = {
            s: outcomes.judge(
                outcomes.read_report(s, agents[s].returncode, self.job.torchelastic_dir(attempt, s))
            )
            for s in failures
        }
        # A process killed or crashed (or an agent lost) is the root cause the others followed.
        retryable = [s for s in failures if verdicts[s].retryable]
        root = retryable[0] if retryable else failed[0]
        return AttemptOutcome(
            succeeded=False, retryable=bool(retryable), source=root, reason=verdicts[root].reason
        )

    def drop_rank_output(self, attempt: int) -> None:
        """Removes torchrun's copies of each process's output after an attempt that succeeded (the
        worker logs hold it too; after a failure they are kept: an agent killed by a signal did
        not copy the last lines its processes printed)."""
        for i in range(self.spec.num_workers):
            for path in self.job.torchelastic_dir(attempt, worker_source(i)).rglob("std*.log"):
                path.unlink(missing_ok=True)

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
        """Records each agent's exit code and which were stopped in this attempt."""
        attempt = self.status.attempts[-1]
        for source, proc in agents.items():
            self.status.workers[source].exit_code = proc.returncode
            attempt.exit_codes[source] = proc.returncode
        attempt.stopped = sorted(stopped)
        attempt.end_time = _now()
        self.write()

    # --- processes -------------------------------------------------------------------------------

    def start(
        self, source: str, command: list[str], env: dict[str, str]
    ) -> subprocess.Popen[bytes]:
        """Starts one process in its own session, its output appended to its log; the kernel
        kills it if this supervisor dies."""
        log = self.job.log_path(source).open("ab")
        self.log_files.append(log)
        proc = processes.start_child(command, log, env, self.job.path)
        self.popens[f"{source}:{proc.pid}"] = proc
        return proc

    def wait(self, proc: subprocess.Popen[bytes]) -> int:
        """The exit code of `proc` once it ends.

        Raises:
            Stopped: a stop signal arrived meanwhile.
        """
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


def _describe(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        return f"{error.strerror} (errno {error.errno})" + (
            f": {error.filename}" if error.filename else ""
        )
    return f"{type(error).__name__}: {error}"


def _append(path: Path, text: str) -> None:
    with path.open("a") as f:
        f.write(text)


def _now() -> str:
    return now_iso()


def read_secrets(stream: IO[bytes]) -> dict[str, str]:
    """The secrets `create_job` writes on the supervisor's standard input (JSON; {} when none)."""
    data = stream.read().strip()
    secrets = json.loads(data) if data else {}
    if not isinstance(secrets, dict):
        raise ValueError("the secrets on standard input must be a JSON object")
    return {str(k): str(v) for k, v in secrets.items()}


def main(argv: list[str] | None = None) -> int:
    """Forks; the parent exits 0 once the child (the supervisor) has recorded itself, else 1
    with the reason on its standard output."""
    parser = argparse.ArgumentParser(prog="python -m kubetune.training.backends.local.supervisor")
    parser.add_argument("jobdir", type=Path, help="the job directory (spec.json, status.json)")
    args = parser.parse_args(argv)
    job = JobDir(args.jobdir.resolve())
    secrets = read_secrets(sys.stdin.buffer)

    def start(answer: Callable[[str], None]) -> int:
        try:
            supervisor = Supervisor(job, secrets)
        except Exception as e:
            logger.exception("the supervisor could not start")
            answer(_describe(e))
            return 1
        return supervisor.run(ready=lambda: answer("ready"), failed=answer)

    return processes.run_detached("supervisor", job.supervisor_log, start)


if __name__ == "__main__":
    sys.exit(main())
