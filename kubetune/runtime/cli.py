"""Command line of the training runtime: parses arguments, runs, reports errors in one line."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import traceback
from pathlib import Path

from kubetune.contract.records import FailureRecord, write_failure
from kubetune.runtime.errors import TrainerError
from kubetune.runtime.startup import DEFAULT_MARKER_TIMEOUT

PROG = "kubetune.runtime"


def parse_args(argv: list[str] | None, prog: str = PROG) -> argparse.Namespace:
    """The parsed command line (argparse exits with status 2 on a usage error)."""
    parser = argparse.ArgumentParser(
        prog=prog, description="Fine-tunes the model of a kubetune job spec."
    )
    parser.add_argument("--spec", required=True, type=Path, help="the job spec JSON file")
    parser.add_argument("--workspace", required=True, type=Path, help="the job workspace folder")
    parser.add_argument(
        "--marker-timeout",
        type=float,
        default=DEFAULT_MARKER_TIMEOUT,
        help=f"seconds to wait for the storage initializer's marker (default {DEFAULT_MARKER_TIMEOUT:g})",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None, prog: str = PROG) -> int:
    """Runs one worker process of a job.

    Args:
        argv: the arguments (default: the command line's).
        prog: the program name in usage and error lines ('kubetune.trainer' for the alias).

    Returns:
        The exit status: 0 on success; 1 on an error, whose one line is the last on stderr
        (`<prog>: error: <message>`), handed to torchrun's agent and written as a FailureRecord
        where $KUBETUNE_FAILURE_FILE names a file; 130 when interrupted.
    """
    args = parse_args(argv, prog)
    configure_logging(prog)
    try:
        from kubetune.runtime.run import run

        run(args.spec, args.workspace, args.marker_timeout)
        code, message = 0, None
    except TrainerError as e:
        code, message = 1, str(e)
    except KeyboardInterrupt:
        code, message = 130, "interrupted"
    except Exception as e:
        traceback.print_exc()
        code, message = 1, f"{type(e).__name__}: {e}"
    shutdown_distributed()
    if message is not None:
        sys.stdout.flush()
        failure = FailureRecord(prog, " ".join(message.split()))
        record_for_torchrun(failure.line)
        write_failure(failure, os.environ)
        print(failure.line, file=sys.stderr, flush=True)
    return code


def configure_logging(prog: str = PROG) -> None:
    """The trainer's own messages (INFO and up) go to stderr with a time stamp.

    Only the "kubetune" loggers get the handler, not the root logger: libraries keep their
    own, and transformers, which hands its records to the root logger as well when the CI
    variable is set, would otherwise print each of them twice.
    """
    logger = logging.getLogger("kubetune")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    for old in [h for h in logger.handlers if h.get_name() == prog]:
        logger.removeHandler(old)  # main() ran before in this process, with another stderr
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(prog)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s: %(message)s"))
    logger.addHandler(handler)


def record_for_torchrun(line: str) -> None:
    """Hands the error line to torchrun's agent, which shows it in its failure summary."""
    path = os.environ.get("TORCHELASTIC_ERROR_FILE")
    if not path:
        return
    record = {
        "message": {
            "message": line,
            "extraInfo": {"py_callstack": line, "timestamp": str(int(time.time()))},
        }
    }
    try:
        with open(path, "w") as f:
            json.dump(record, f)
    except OSError:
        pass


def shutdown_distributed() -> None:
    """Destroys the process group, so that nothing is printed about it after our last line."""
    try:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
    except Exception:  # the group may already be broken by the failure being reported
        pass
