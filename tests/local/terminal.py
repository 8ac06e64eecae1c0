"""Drives a command in a pseudo-terminal, as a person at a terminal would: waits for its prompt,
types a line, reads what it prints."""

from __future__ import annotations

import contextlib
import os
import pty
import select
import subprocess
import time
from collections.abc import Sequence

import pytest


class Terminal:
    """A command running on the slave side of a pty; `transcript` holds everything it printed
    (and the echo of what was typed)."""

    def __init__(self, argv: Sequence[str], env: dict[str, str], cwd: str | None = None) -> None:
        master, slave = pty.openpty()
        self.process = subprocess.Popen(
            list(argv), stdin=slave, stdout=slave, stderr=slave, env=env, cwd=cwd, close_fds=True
        )
        os.close(slave)
        self.master = master
        self.transcript = ""

    def read_until(self, text: str, count: int, timeout: float) -> None:
        """Reads until `text` has appeared `count` times in the transcript (fails the test after
        `timeout` seconds, showing the transcript)."""
        deadline = time.monotonic() + timeout
        while self.transcript.count(text) < count:
            if time.monotonic() > deadline:
                self.close()
                pytest.fail(f"no {text!r} (#{count}) within {timeout:g} s:\n{self.transcript}")
            ready, _, _ = select.select([self.master], [], [], 0.2)
            if ready:
                try:
                    data = os.read(self.master, 4096)
                except OSError:  # EIO: the command ended
                    data = b""
                if not data:
                    if self.process.poll() is not None:
                        self.close()
                        pytest.fail(f"the command ended before {text!r}:\n{self.transcript}")
                    continue
                self.transcript += data.decode(errors="replace").replace("\r\n", "\n")

    def type(self, text: str) -> None:
        """Types `text` (add '\\n' for Enter, '\\x04' for Ctrl-D at the start of a line)."""
        os.write(self.master, text.encode())

    def wait(self, timeout: float) -> int:
        """The command's exit status once it ends (reading what it still prints)."""
        deadline = time.monotonic() + timeout
        while self.process.poll() is None and time.monotonic() < deadline:
            ready, _, _ = select.select([self.master], [], [], 0.2)
            if ready:
                try:
                    self.transcript += os.read(self.master, 4096).decode(errors="replace")
                except OSError:
                    break
        code = self.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        self.close()
        return code

    def close(self) -> None:
        """Ends the command if it still runs and closes the terminal."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        with contextlib.suppress(OSError):
            os.close(self.master)
