"""Reading a local job's logs back, following them while it runs, and quoting failure causes.

Whether a failure is worth a restart is not read from logs (see outcomes.py), nor why a step
failed where it wrote a FailureRecord (see the supervisor).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from kubetune.training.job import LogLine

# The one-line error kubetune's steps (storage initializer, trainer, a function job's package
# step) print last when they fail.
ERROR_LINE = re.compile(r"kubetune\.[\w.]+: error: .*")
_ERRORISH = re.compile(r"(Error|Exception|error:|Traceback|Killed|exitcode|Signal \d+)")


class LogFile:
    """One log file read incrementally: complete lines only, from where the last read ended
    (with `tail_lines`, the first read starts that many lines before the end)."""

    def __init__(self, path: Path, source: str, tail_lines: int | None = None) -> None:
        self.path = path
        self.source = source
        self.offset = 0 if tail_lines is None else tail_offset(path, tail_lines)
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


def tail_offset(path: Path, lines: int, block: int = 64 * 1024) -> int:
    """The offset in `path` where its last `lines` lines begin (0 for a shorter or missing file)."""
    try:
        with path.open("rb") as f:
            f.seek(0, 2)
            end = f.tell()
            position, found = end, 0
            while position > 0:
                start = max(0, position - block)
                f.seek(start)
                chunk = f.read(position - start)
                # A final newline ends the last line; it starts no line of its own.
                count_from = len(chunk) - 1 if position == end and chunk.endswith(b"\n") else None
                for index in range(len(chunk) - 1, -1, -1):
                    if chunk[index] == 0x0A and (count_from is None or index < count_from):
                        found += 1
                        if found == lines:
                            return start + index + 1
                position = start
    except FileNotFoundError:
        pass
    return 0


def read_logs(files: list[tuple[str, Path]], tail_lines: int | None = None) -> Iterator[LogLine]:
    """Everything written so far (the last `tail_lines` of each), file after file (initializer
    first, then each worker)."""
    for source, path in files:
        yield from LogFile(path, source, tail_lines).read_new(final=True)


def follow_logs(
    files: list[tuple[str, Path]],
    done: Callable[[], bool],
    poll_interval: float = 0.2,
    on_poll: Callable[[], None] | None = None,
    tail_lines: int | None = None,
) -> Iterator[LogLine]:
    """Lines from every file as they are written (starting with the last `tail_lines` of what is
    there); ends once `done()` is true and all is read.

    `on_poll` is called at every polling round (e.g. to redraw a progress bar).
    """
    readers = [LogFile(path, source, tail_lines) for source, path in files]
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
    """The cause of a failure as its log tells it, for a step that wrote no FailureRecord (killed,
    or failing before it could).

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
