"""The local queue: which jobs of one KUBETUNE_HOME may run now, first come first served.

`$KUBETUNE_HOME/queue/queue.json` lists the jobs that wait or run, in order of arrival, each with
what it reserves (CPU cores, memory, GPUs) and, once admitted, the GPUs it holds. Supervisors
change it only while they hold the exclusive lock on `queue/queue.lock`; nothing else writes it.
The job at the head of the waiting line is admitted as soon as what it reserves is free; the jobs
behind it wait their turn even when they would fit (no job overtakes another, so none starves).
An entry whose supervisor is gone (killed, the machine rebooted) is dropped by the next
supervisor that looks. `decide` is the admission rule, a pure function.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from kubetune.contract import layout
from kubetune.contract.quantities import usable_cores
from kubetune.training.backends.local import launch, processes

QUEUE_DIR = "queue"
QUEUE_FILE = "queue.json"
LOCK_FILE = "queue.lock"
_EPSILON = 1e-9


@dataclass(frozen=True)
class Machine:
    """What the queue shares out: CPU cores, memory (bytes) and GPU ids."""

    cpus: float
    memory: float
    gpu_ids: list[str]


def this_machine() -> Machine:
    """This machine as the queue sees it: usable cores, total memory, visible GPUs."""
    return Machine(
        cpus=float(usable_cores()),
        memory=float(psutil.virtual_memory().total),
        gpu_ids=launch.visible_gpus(),
    )


@dataclass
class Entry:
    """One job in the queue: who supervises it, what it reserves, whether it runs."""

    uid: str
    namespace: str
    name: str
    pid: int
    create_time: float | None
    cpus: float
    memory: float = 0.0
    gpus: int = 0
    admitted: bool = False
    gpu_ids: list[str] = field(default_factory=list)
    enqueued_at: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        """The entry as queue.json holds it."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Entry:
        """The entry queue.json held (unknown keys left out)."""
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class Decision:
    """Where a job stands: admitted (with its GPUs), or its place in the waiting line (1: next)."""

    admitted: bool
    place: int = 0
    waiting: int = 0
    gpu_ids: list[str] = field(default_factory=list)
    waits_for: str = ""
    never: str = ""


def decide(entries: list[Entry], uid: str, machine: Machine) -> Decision:
    """Whether job `uid` may start now; `entries` in order of arrival (admitted ones included).

    Only the first job of the waiting line may start, and only when its CPU cores, memory and
    GPUs are free. `never` says why a job can never start on `machine` (it asks for more than
    the machine has).
    """
    admitted = [e for e in entries if e.admitted]
    waiting = [e for e in entries if not e.admitted]
    me = next(e for e in entries if e.uid == uid)
    if me.admitted:
        return Decision(True, gpu_ids=list(me.gpu_ids))
    place = waiting.index(me) + 1
    never = _never_fits(me, machine)
    if never:
        return Decision(False, place, len(waiting), never=never)
    free_cpus = machine.cpus - sum(e.cpus for e in admitted)
    free_memory = machine.memory - sum(e.memory for e in admitted)
    held = {g for e in admitted for g in e.gpu_ids}
    free_gpus = [g for g in machine.gpu_ids if g not in held]
    short = []
    if me.cpus > free_cpus + _EPSILON:
        short.append(f"{me.cpus:g} CPU core(s) ({max(free_cpus, 0):g} of {machine.cpus:g} free)")
    if me.memory > free_memory + _EPSILON:
        short.append(
            f"{me.memory / 2**30:.1f} GiB of memory ({max(free_memory, 0) / 2**30:.1f} of "
            f"{machine.memory / 2**30:.1f} GiB free)"
        )
    if me.gpus > len(free_gpus):
        short.append(f"{me.gpus} GPU(s) ({len(free_gpus)} of {len(machine.gpu_ids)} free)")
    if place > 1:
        ahead = waiting[place - 2]
        return Decision(
            False,
            place,
            len(waiting),
            waits_for=f"its turn (after {ahead.namespace}/{ahead.name})"
            + (f" and {', '.join(short)}" if short else ""),
        )
    if short:
        return Decision(False, place, len(waiting), waits_for=", ".join(short))
    return Decision(True, gpu_ids=free_gpus[: me.gpus])


def _never_fits(entry: Entry, machine: Machine) -> str:
    problems = []
    if entry.cpus > machine.cpus + _EPSILON:
        problems.append(f"{entry.cpus:g} CPU core(s), the machine has {machine.cpus:g}")
    if entry.memory > machine.memory + _EPSILON:
        problems.append(
            f"{entry.memory / 2**30:.1f} GiB of memory, the machine has {machine.memory / 2**30:.1f} GiB"
        )
    if entry.gpus > len(machine.gpu_ids):
        problems.append(f"{entry.gpus} GPU(s), the machine has {len(machine.gpu_ids)}")
    return "; ".join(problems)


def queued_message(decision: Decision) -> str:
    """The message of a waiting job's Created condition (reason 'Queued')."""
    return (
        f"waiting in the local queue: place {decision.place} of {decision.waiting}; "
        f"waits for {decision.waits_for}"
    )


class LocalQueue:
    """The queue of the jobs of `home` (see the module docstring)."""

    def __init__(self, home: Path) -> None:
        self.folder = Path(home) / QUEUE_DIR
        self.path = self.folder / QUEUE_FILE
        self.lock_path = self.folder / LOCK_FILE

    def entries(self) -> list[Entry]:
        """The entries of live supervisors, as last written (read without the lock; never writes)."""
        return [e for e in self._load() if processes.is_alive(e.pid, e.create_time)]

    def _load(self) -> list[Entry]:
        data = layout.read_json(self.path)
        if not isinstance(data, list):
            return []
        return [Entry.from_dict(d) for d in data if isinstance(d, dict)]

    @contextlib.contextmanager
    def locked(self) -> Iterator[list[Entry]]:
        """The entries under the exclusive lock, without those of dead supervisors; what the
        caller leaves in the list is written back."""
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            loaded = self._load()
            before = [e.to_dict() for e in loaded]
            entries = [e for e in loaded if processes.is_alive(e.pid, e.create_time)]
            yield entries
            after = [e.to_dict() for e in entries]
            if after != before:
                layout.write_json_atomic(self.path, after)
        finally:
            os.close(fd)

    def add(self, entry: Entry) -> None:
        """Puts a job at the end of the line (again at the same place when it is there already)."""
        with self.locked() as entries:
            if not any(e.uid == entry.uid for e in entries):
                entries.append(entry)

    def poll(self, entry: Entry, machine: Machine) -> Decision:
        """Decides for `entry`'s job and, when it is admitted, records that with its GPUs."""
        with self.locked() as entries:
            if not any(e.uid == entry.uid for e in entries):
                entries.append(entry)
            decision = decide(entries, entry.uid, machine)
            if decision.admitted:
                for e in entries:
                    if e.uid == entry.uid and not e.admitted:
                        e.admitted, e.gpu_ids = True, list(decision.gpu_ids)
            return decision

    def remove(self, uid: str) -> None:
        """Takes a job out of the queue (it ended, or was stopped while it waited)."""
        with self.locked() as entries:
            entries[:] = [e for e in entries if e.uid != uid]
