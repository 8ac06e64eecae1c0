"""Reading a local job's logs back, following them while it runs, and finding failure causes."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from kubetune.training.job import LogLine

# The one-line error kubetune's steps (storage initializer, trainer, a function job's package
# step) print last when they fail.
ERROR_LINE = re.compile(r"kubetune\.[\w.]+: error: .*")
# torchrun's failure report: "exitcode  : -9 (pid: 123)" per failed process.
_EXIT_CODE = re.compile(r"exitcode\s*:\s*(-?\d+)")
_SIGNAL = re.compile(r"Signal (\d+) \(SIG\w+\) received by PID")
# A rendezvous port taken by someone else between choosing it and binding it: worth a retry.
_PORT_TAKEN = re.compile(r"EADDRINUSE|[Aa]ddress already in use")
_ERRORISH = re.compile(r"(Error|Exception|error:|Traceback|Killed|exitcode|Signal \d+)")


class LogFile:
    """One log file read incrementally: complete lines only, from where the last read ended."""

    def __init__(self, path: Path, source: str) -> None:
        self.path = path
        self.source = source
        self.offset = 0
        self.partial = b""

    def read_new(self, final: bool = False) -> list[LogLine]:
        """The lines written since the last call; `final` also returns an unterminated last line."""
        try:
            with self.path.open("rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            data = b""
        self.offset += len(data)
        data = self.partial + data
        *complete, self.partial = data.split(b"\n")
        if final and self.partial:
            complete.append(self.partial)
            self.partial = b""
        return [LogLine(self.source, _clean(raw)) for raw in complete]


def _clean(raw: bytes) -> str:
    text = raw.decode("utf-8", errors="replace").rstrip("\r")
    # A progress bar redraws itself with carriage returns; keep what it showed last.
    return text.rsplit("\r", 1)[-1]


def read_logs(files: list[tuple[str, Path]]) -> Iterator[LogLine]:
    """Everything written so far, file after file (initializer first, then each worker)."""
    for source, path in files:
        yield from LogFile(path, source).read_new(final=True)


def follow_logs(
    files: list[tuple[str, Path]],
    done: Callable[[], bool],
    poll_interval: float = 0.2,
    on_poll: Callable[[], None] | None = None,
) -> Iterator[LogLine]:
    """Lines from every file as they are written; ends once `done()` is true and all is read.

    `on_poll` is called at every polling round (e.g. to redraw a progress bar).
    """
    readers = [LogFile(path, source) for source, path in files]
    while True:
        finished = done()
        for reader in readers:
            yield from reader.read_new(final=finished)
        if on_poll is not None:
            on_poll()
        if finished:
            return
        time.sleep(poll_interval)


def tail(path: Path, max_bytes: int = 64 * 1024, offset: int = 0) -> list[str]:
    """The last lines of a file (at most `max_bytes`, none before `offset`)."""
    try:
        with path.open("rb") as f:
            f.seek(0, 2)
            size = f.tell()
            start = max(offset, size - max_bytes)
            f.seek(start)
            data = f.read()
    except FileNotFoundError:
        return []
    return [_clean(raw) for raw in data.split(b"\n")]


def failure_reason(path: Path, offset: int = 0, max_lines: int = 5) -> str:
    """The cause of a failure as its log tells it.

    The `kubetune.<component>: error: ...` line when there is one (the first of them: the other
    ranks often fail after it only because it did); else the last error-looking lines; else the
    last lines.
    """
    lines = [line for line in tail(path, offset=offset) if line.strip()]
    errors = [m.group(0) for line in lines if (m := ERROR_LINE.search(line))]
    if errors:
        return errors[0]
    errorish = [line.strip() for line in lines if _ERRORISH.search(line)]
    chosen = errorish[-max_lines:] if errorish else [line.strip() for line in lines[-max_lines:]]
    return " | ".join(chosen) if chosen else f"no output in {path}"


def retryable_failure(path: Path, offset: int = 0) -> bool:
    """Whether the failure this log reports is worth a restart.

    True when torchrun's failure report names a process killed by a signal or ended with a code
    of 128 or more (the Training Operator's ExitCode policy), or the rendezvous port was taken.
    """
    text = "\n".join(tail(path, max_bytes=256 * 1024, offset=offset))
    codes = [int(c) for c in _EXIT_CODE.findall(text)]
    return (
        any(code < 0 or code >= 128 for code in codes)
        or bool(_SIGNAL.search(text))
        or bool(_PORT_TAKEN.search(text))
    )
