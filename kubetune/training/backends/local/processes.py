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
import os
import signal
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

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
    skip = {os.getpid(), *exclude}
    found = []
    for process in psutil.process_iter():
        if process.pid in skip:
            continue
        try:
            if process.environ().get(JOB_UID_ENV) == uid:
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess, OSError):
            continue
    return found


def processes_in(folder: Path, exclude: Iterable[int] = ()) -> list[psutil.Process]:
    """The live processes that run in `folder` or below it (their working directory)."""
    skip = {os.getpid(), *exclude}
    found = []
    for process in psutil.process_iter():
        if process.pid in skip:
            continue
        try:
            cwd = Path(process.cwd())
        except (psutil.Error, OSError):
            continue
        if cwd == folder or folder in cwd.parents:
            found.append(process)
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
