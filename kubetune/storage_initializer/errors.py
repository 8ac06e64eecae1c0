"""The one error type the storage initializer reports."""

from __future__ import annotations

PROG = "kubetune.storage_initializer"


class InitializerError(Exception):
    """A fetch that failed for a reason the user can act on.

    `what` names what was asked for (e.g. "dataset s3://bucket/key"), `problem` says what went
    wrong; `str()` is the one line the CLI prints.
    """

    def __init__(self, what: str, problem: str) -> None:
        super().__init__(f"{what}: {problem}")
        self.what = what
        self.problem = problem


def first_line(error: BaseException) -> str:
    """The first non-empty line of an exception's message, or its type name when it has none."""
    for line in str(error).splitlines():
        if line.strip():
            return line.strip()
    return type(error).__name__
