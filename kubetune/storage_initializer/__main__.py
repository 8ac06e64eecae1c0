"""`python -m kubetune.storage_initializer --spec JOBSPEC.json --workspace DIR [--verbose]`.

Exit status 0 on success; 1 on a failure, with one line on stderr
`kubetune.storage_initializer: error: <what was asked for>: <what went wrong>` (a traceback only
with --verbose, never a secret), also written as a FailureRecord where $KUBETUNE_FAILURE_FILE
names a file; 2 on usage errors.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import traceback
from pathlib import Path
from types import FrameType

from kubetune.storage_initializer.errors import PROG


def _configure_logging(verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"{PROG}: %(message)s"))
    logger = logging.getLogger("kubetune")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    logger.propagate = False
    if not verbose:
        os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("DATASETS_VERBOSITY", "error")


def _terminate(signum: int, frame: FrameType | None) -> None:
    # Turns SIGTERM (pod deletion, Ctrl-C of a parent) into an exit that runs the clean-up.
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    """Runs the storage initializer from the command line; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Fetch a job's model and dataset into its workspace, then write the completion marker.",
    )
    parser.add_argument("--spec", required=True, type=Path, help="JobSpec JSON file")
    parser.add_argument("--workspace", required=True, type=Path, help="the job's workspace folder")
    parser.add_argument("--verbose", action="store_true", help="debug logging and tracebacks")
    args = parser.parse_args(argv)

    from kubetune.contract.records import FailureRecord, write_failure
    from kubetune.contract.secrets import redact, secret_values
    from kubetune.contract.spec import JobSpec
    from kubetune.storage_initializer.errors import InitializerError, first_line

    try:
        spec = JobSpec.from_json(args.spec.read_text())
    except (OSError, ValueError, TypeError) as error:
        parser.error(f"--spec {args.spec}: {first_line(error)}")

    _configure_logging(args.verbose)
    signal.signal(signal.SIGTERM, _terminate)
    secrets = secret_values(os.environ)

    from kubetune.storage_initializer.initialize import initialize

    try:
        initialize(spec, args.workspace)
    except Exception as error:
        if args.verbose:
            sys.stderr.write(redact(traceback.format_exc(), secrets))
        if isinstance(error, InitializerError):
            message = str(error)
        else:
            message = f"job {spec.name}: unexpected {type(error).__name__}: {first_line(error)}"
        failure = FailureRecord(PROG, redact(message, secrets))
        write_failure(failure, os.environ)
        sys.stderr.write(f"{failure.line}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
