"""How a failed worker ended, read from torchelastic's structured files instead of log text.

For each worker (torchrun agent) the supervisor has its exit code and two kinds of files in the
worker's torchelastic folder (`JobDir.torchelastic_dir`):

- the agent's reply file (the agent's TORCHELASTIC_ERROR_FILE): torchrun copies there the error
  file of the first process that failed, with that process's exit code as `errorCode`, or
  records the agent's own error (a rendezvous port taken, a lost peer agent);
- each process's `kubetune-rank.json`, written by `entry.py`: started, then ended with an exit
  code (and whether SIGTERM stopped it). A process that started and never ended was killed by
  a signal.

`judge` turns that into a verdict: a restart is worth it when a process was killed or crashed
(a signal, an exit code of 128 or more) or the agent itself failed; an exit code from 1 to 127
reported by a process (the trainer's own errors) is permanent, as the Training Operator's
ExitCode restart policy has it.
"""

from __future__ import annotations

import json
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubetune.training.backends.local.entry import RANK_RECORD

REPLY_FILE = "reply.json"


@dataclass(frozen=True)
class RankEnd:
    """How one process ended; `exitcode` None: it never recorded an end (killed by a signal)."""

    rank: int | None
    pid: int | None
    exitcode: int | None
    stopped: bool = False


@dataclass(frozen=True)
class WorkerReport:
    """What a failed worker left: its agent's exit code, reply and each process's end."""

    source: str
    exit_code: int
    reply: dict[str, Any] | None = None
    ranks: list[RankEnd] = field(default_factory=list)


@dataclass(frozen=True)
class Verdict:
    retryable: bool
    reason: str


def read_report(source: str, exit_code: int, folder: Path) -> WorkerReport:
    """The report of worker `source` whose agent ended with `exit_code`, from its torchelastic folder."""
    reply = _read_json(folder / REPLY_FILE)
    ranks = []
    for path in sorted(folder.rglob(RANK_RECORD)):
        data = _read_json(path)
        if data is None:
            continue
        ended = data.get("state") == "ended"
        ranks.append(
            RankEnd(
                rank=data.get("rank"),
                pid=data.get("pid"),
                exitcode=data.get("exitcode") if ended else None,
                stopped=bool(data.get("stopped")),
            )
        )
    message = reply.get("message") if isinstance(reply, dict) else None
    if isinstance(message, str):
        message = {"message": message}
    return WorkerReport(
        source, exit_code, message if isinstance(message, dict) else None, sorted(ranks, key=_order)
    )


def judge(report: WorkerReport) -> Verdict:
    """Whether the worker's failure is worth a restart, and its cause in one line."""
    if report.exit_code < 0:
        return Verdict(True, f"its torchrun agent was killed by {_signal_name(-report.exit_code)}")
    for rank in report.ranks:
        if rank.exitcode is None:
            return Verdict(
                True,
                f"rank {rank.rank} (pid {rank.pid}) was killed by a signal before it could report "
                "(SIGKILL, the out-of-memory killer, a crash)",
            )
    for rank in report.ranks:
        if not rank.stopped and rank.exitcode is not None and _crash_code(rank.exitcode):
            return Verdict(
                True, f"rank {rank.rank} (pid {rank.pid}) exited with code {rank.exitcode}"
            )
    if report.reply is not None:
        text = " ".join(str(report.reply.get("message", "")).split())
        code = report.reply.get("errorCode")
        if isinstance(code, int):
            return Verdict(_crash_code(code), text or f"a process exited with code {code}")
        # No process's code: the agent's own error (rendezvous, a port taken, a lost peer agent).
        return Verdict(True, f"its torchrun agent failed: {text}")
    return Verdict(True, f"its torchrun agent exited with code {report.exit_code} without a report")


def _crash_code(code: int) -> bool:
    return code < 0 or code >= 128


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _order(rank: RankEnd) -> int:
    return rank.rank if rank.rank is not None else -1


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None
