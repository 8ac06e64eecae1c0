"""Finding, binding and stopping a local job's processes.

Every process of a job carries KUBETUNE_JOB_UID=<uid> in its environment (torchrun passes its
environment on to the processes it starts), so the job's processes are found even after a
parent died and they were re-parented; they also all run in the job folder (their working
directory), which finds them when the uid is unknown. Each process dies with the process that
started it: the supervisor's children through `die_with_parent`, torchrun's through `entry.py`.
Stopping: SIGTERM to each process and process group, a grace period, then SIGKILL; processes
that are our children are reaped.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

import psutil

from kubetune.training.backends.local.launch import JOB_UID_ENV

_PR_SET_CHILD_SUBREAPER = 36
_PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int) -> Callable[[], None]:
    """A `preexec_fn` for subprocess.Popen: the child is SIGKILLed when `parent` ends (Linux).

    `parent` is the pid of the process that calls Popen; a child whose parent is already gone
    when it asks kills itself at once.
    """

    prctl = _prctl()  # looked up here: the child only calls it

    def preexec() -> None:
        if prctl is not None:
            prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)

    return preexec


def is_alive(pid: int, create_time: float | None = None) -> bool:
    """Whether `pid` runs and is not a zombie (and, given `create_time`, is the same process)."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        return create_time is None or abs(process.create_time() - create_time) < 1.0
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def job_processes(uid: str, exclude: Iterable[int] = ()) -> list[psutil.Process]:
    """The live processes whose environment carries this job's uid."""
    return _live_processes(lambda process: process.environ().get(JOB_UID_ENV) == uid, exclude)


def processes_in(folder: Path, exclude: Iterable[int] = ()) -> list[psutil.Process]:
    """The live processes that run in `folder` or below it (their working directory)."""

    def runs_in(process: psutil.Process) -> bool:
        cwd = Path(process.cwd())
        return cwd == folder or folder in cwd.parents

    return _live_processes(runs_in, exclude)


def _live_processes(
    matches: Callable[[psutil.Process], bool], exclude: Iterable[int]
) -> list[psutil.Process]:
    """The live processes but this one and `exclude` for which `matches` holds; a process that
    ends or may not be read while it is looked at does not count."""
    skip = {os.getpid(), *exclude}
    found = []
    for process in psutil.process_iter():
        if process.pid in skip:
            continue
        try:
            if matches(process):
                found.append(process)
        except (psutil.Error, OSError):
            continue
    return found


def descendants(pid: int) -> list[int]:
    """The pids of every live descendant of `pid`."""
    try:
        return [p.pid for p in psutil.Process(pid).children(recursive=True)]
    except psutil.Error:
        return []


def signal_processes(processes: Iterable[psutil.Process], sig: int) -> None:
    """Sends `sig` to each process and to its process group when it leads one."""
    for process in processes:
        with contextlib.suppress(psutil.Error, OSError):
            if os.getpgid(process.pid) == process.pid:
                os.killpg(process.pid, sig)
            process.send_signal(sig)


def stop(processes: list[psutil.Process], grace: float = 10.0) -> None:
    """SIGTERM, wait up to `grace` seconds, SIGKILL what is left, and reap our own children."""
    if not processes:
        return
    signal_processes(processes, signal.SIGTERM)
    _, alive = psutil.wait_procs(processes, timeout=grace)
    alive = [p for p in alive if is_running(p)]
    if alive:
        signal_processes(alive, signal.SIGKILL)
        psutil.wait_procs(alive, timeout=grace)
    reap_children()


def stop_job(uid: str, known_pids: Iterable[int] = (), grace: float = 10.0) -> list[int]:
    """Stops every process of job `uid` (found by environment, plus `known_pids` if alive).

    Repeats the search until none is left, since a dying parent may have started a child in
    between. Returns the pids that were stopped.
    """
    stopped: list[int] = []
    candidates = [p for p in _processes(known_pids) if _has_uid(p, uid)]
    for _ in range(5):
        found = {p.pid: p for p in [*candidates, *job_processes(uid)] if is_running(p)}
        if not found:
            break
        stop(list(found.values()), grace)
        stopped.extend(found)
        candidates = []
    return stopped


def reap_children(skip: Iterable[int] = ()) -> None:
    """Collects the exit status of our own ended children, except `skip` (no zombies left behind).

    Children held by a `subprocess.Popen` belong in `skip`: Popen must reap those itself.
    """
    skipped = set(skip)
    for child in psutil.Process().children():
        if child.pid in skipped:
            continue
        with contextlib.suppress(psutil.Error, ChildProcessError, OSError):
            if child.status() == psutil.STATUS_ZOMBIE:
                os.waitpid(child.pid, os.WNOHANG)


def become_subreaper() -> bool:
    """Makes orphaned descendants re-parent to this process (Linux), so it can reap them."""
    prctl = _prctl()
    return prctl is not None and prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0


def _prctl() -> Any:
    """libc's prctl, or None where there is none (not Linux)."""
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def _processes(pids: Iterable[int]) -> list[psutil.Process]:
    found = []
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            found.append(psutil.Process(pid))
    return found


def _has_uid(process: psutil.Process, uid: str) -> bool:
    try:
        return process.environ().get(JOB_UID_ENV) == uid
    except (psutil.Error, OSError):
        return False


def is_running(process: psutil.Process) -> bool:
    """Whether the process still runs (a zombie does not)."""
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def wait_gone(pids: Iterable[int], timeout: float) -> list[int]:
    """Waits until none of `pids` runs; returns those still running after `timeout`."""
    deadline = time.monotonic() + timeout
    remaining = list(pids)
    while remaining and time.monotonic() < deadline:
        remaining = [pid for pid in remaining if is_alive(pid)]
        if remaining:
            time.sleep(0.05)
    return remaining


def start_child(
    command: list[str], log: IO[bytes], env: dict[str, str], cwd: Path
) -> subprocess.Popen[bytes]:
    """Starts a child in `cwd` and a session of its own, reading /dev/null, its output appended
    to `log`; the kernel kills it if this process dies (`die_with_parent`)."""
    return subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=cwd,
        start_new_session=True,
        preexec_fn=die_with_parent(os.getpid()),
    )


def start_detached(
    module: str, folder: Path, env: dict[str, str], secrets: dict[str, str], timeout: float
) -> tuple[int, str]:
    """Runs `python -m MODULE FOLDER` (a command that forks itself with `run_detached`) in
    `folder` and a session of its own, `secrets` as JSON on its standard input, and waits for it.

    Returns:
        Its exit code (-1: it could not be run, or took longer than `timeout` seconds) and the
        last lines it printed, joined with ' | ' (its reason when it did not start).
    """
    try:
        starter = subprocess.Popen(
            [sys.executable, "-m", module, str(folder)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=folder,
            start_new_session=True,
        )
        try:
            out, _ = starter.communicate(json.dumps(secrets).encode(), timeout=timeout)
            code = starter.returncode
        except subprocess.TimeoutExpired:
            starter.kill()
            out, _ = starter.communicate()
            code = -1
        said = out.decode(errors="replace")
    except OSError as e:
        code, said = -1, f"{type(e).__name__}: {e}"
    return code, " | ".join(line for line in said.splitlines()[-8:] if line.strip())


def run_detached(
    what: str,
    log: Path,
    start: Callable[[Callable[[str], None]], int],
    *,
    new_session: bool = False,
) -> int:
    """Forks a long-lived process (the job supervisor, an experiment's controller). The parent
    returns 0 once the child answers "ready", else 1 after printing the child's answer (its
    reason for not starting). The child reads /dev/null and appends its output to `log`, logs at
    INFO to it, and returns `start(answer)`; `new_session` puts it in a session of its own.
    """
    read_fd, write_fd = os.pipe()
    if os.fork():
        os.close(write_fd)
        with os.fdopen(read_fd, "rb") as pipe:
            reply = pipe.read().decode(errors="replace")
        if reply == "ready":
            return 0
        print(reply or f"the {what} ended before it was ready", flush=True)
        return 1
    os.close(read_fd)
    if new_session:
        os.setsid()

    def answer(text: str) -> None:
        os.write(write_fd, text.encode())
        os.close(write_fd)

    try:
        _detach_output(log)
    except OSError as e:
        answer(f"cannot write {log}: {e.strerror or e}")
        return 1
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr
    )
    return start(answer)


def _detach_output(log: Path) -> None:
    """Points standard input at /dev/null and standard output and error at `log` (appending)."""
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    os.close(null)
