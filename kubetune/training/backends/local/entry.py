"""`python -m kubetune.training.backends.local.entry MODULE [ARGS...]`: one local training process.

torchrun starts it once per rank (see `launch.agent_command`). Before it runs MODULE as
`__main__` with ARGS, it

1. ties its life to its torchrun agent: the kernel kills it (SIGKILL) when the agent dies,
   however the agent died, so no process trains on for a worker that is gone (torchrun starts
   the processes itself, so each sets this for itself, first checking that its parent is still
   the agent that started it);
2. records how it ends in `kubetune-rank.json` beside its torchelastic error file: 'started',
   then its exit code, and whether SIGTERM stopped it (its agent stops the other processes once
   one failed). A rank that started and never recorded an end was killed by a signal: SIGKILL,
   the out-of-memory killer, a crash;
3. when it fails without having written a torchelastic error file, writes one, so that the
   agent's reply file always names the first failure that was not a signal.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import runpy
import signal
import sys
import time
import traceback
from pathlib import Path
from types import FrameType
from typing import Any

RANK_RECORD = "kubetune-rank.json"
ERROR_FILE_ENV = "TORCHELASTIC_ERROR_FILE"
_PR_SET_PDEATHSIG = 1
# What a torchrun agent's command line holds (`python -m torch.distributed.run`, or `torchrun`).
_AGENT_MARKS = (b"torch.distributed.run", b"torchrun")


def bind_to_agent() -> None:
    """Makes the kernel SIGKILL this process when its parent (the torchrun agent) ends.

    Exits at once when the parent is already gone: then this process was re-parented before it
    could ask, and its parent is no longer a torchrun agent.
    """
    parent = os.getppid()
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent or not _is_agent(parent):
        print(
            f"kubetune: the torchrun agent that started this process (pid {os.getpid()}) is gone; "
            "exiting",
            file=sys.stderr,
            flush=True,
        )
        os.kill(os.getpid(), signal.SIGKILL)


def _is_agent(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True  # not Linux: nothing to check against
    return any(mark in cmdline for mark in _AGENT_MARKS)


class RankRecord:
    """This process's `kubetune-rank.json` (nothing is recorded outside torchrun)."""

    def __init__(self, error_file: str | None) -> None:
        self.error_file = Path(error_file) if error_file else None
        self.path = self.error_file.with_name(RANK_RECORD) if self.error_file else None
        self.data: dict[str, Any] = {
            "rank": _int_env("RANK"),
            "local_rank": _int_env("LOCAL_RANK"),
            "pid": os.getpid(),
            "state": "started",
        }

    def started(self) -> None:
        """Records that the process started."""
        self._write()

    def ended(self, code: int, stopped: bool = False) -> None:
        """Records how the process ended: its exit code, and whether SIGTERM stopped it."""
        self.data.update(state="ended", exitcode=code, stopped=stopped)
        self._write()

    def on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        """Stopped (by the agent, the supervisor or `delete`): recorded as such, then ends at once."""
        code = 128 + signum
        self.ended(code, stopped=True)
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)

    def write_error_if_missing(self, message: str, callstack: str) -> None:
        """Writes a torchelastic error file when the process has not written one itself."""
        if self.error_file is None or self.error_file.exists():
            return
        record = {
            "message": {
                "message": message,
                "extraInfo": {"py_callstack": callstack, "timestamp": str(int(time.time()))},
            }
        }
        with contextlib.suppress(OSError):
            self.error_file.write_text(json.dumps(record))

    def _write(self) -> None:
        if self.path is None:
            return
        tmp = self.path.with_name(f".{RANK_RECORD}.{os.getpid()}")
        with contextlib.suppress(OSError):
            tmp.write_text(json.dumps(self.data))
            os.replace(tmp, self.path)


def _int_env(name: str) -> int | None:
    value = os.environ.get(name, "")
    return int(value) if value.isdigit() else None


def _exit_code(code: Any) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def run(module: str, args: list[str]) -> int:
    """Runs `module` as `__main__` with `args`, bound to its agent and recorded; its exit code."""
    if "TORCHELASTIC_RUN_ID" in os.environ:
        bind_to_agent()
    record = RankRecord(os.environ.get(ERROR_FILE_ENV))
    record.started()
    signal.signal(signal.SIGTERM, record.on_sigterm)
    sys.argv = [module, *args]
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as e:
        code = _exit_code(e.code)
        if code:
            record.write_error_if_missing(f"{module} exited with code {code}", "")
    except KeyboardInterrupt:
        code = 130
        record.write_error_if_missing(f"{module}: interrupted", traceback.format_exc())
    except BaseException as e:
        traceback.print_exc()
        code = 1
        record.write_error_if_missing(f"{type(e).__name__}: {e}", traceback.format_exc())
    record.ended(code)
    return code


def main() -> int:
    """Runs the module the command line names; returns its exit code (2 without one)."""
    if len(sys.argv) < 2:
        print(f"usage: python -m {__spec__.name if __spec__ else 'entry'} MODULE [ARGS...]")
        return 2
    return run(sys.argv[1], sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
