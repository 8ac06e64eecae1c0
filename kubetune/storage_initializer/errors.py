"""The one error type the storage initializer reports, and scrubbing of secrets from text."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from kubetune.training.spec import SECRET_ENV_VARS

REDACTED = "***"


class InitializerError(Exception):
    """A fetch that failed for a reason the user can act on.

    `what` names what was asked for (e.g. "dataset s3://bucket/key"), `problem` says what went
    wrong; `str()` is the one line the CLI prints.
    """

    def __init__(self, what: str, problem: str) -> None:
        super().__init__(f"{what}: {problem}")
        self.what = what
        self.problem = problem


def secret_values(env: Mapping[str, str]) -> list[str]:
    """The secret values present in `env` (the variables named in SECRET_ENV_VARS)."""
    return [env[name] for name in SECRET_ENV_VARS if env.get(name)]


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every occurrence of a secret replaced by '***'."""
    for secret in sorted(secrets, key=len, reverse=True):
        if secret:
            text = text.replace(secret, REDACTED)
    return text


def first_line(error: BaseException) -> str:
    """The first non-empty line of an exception's message, or its type name when it has none."""
    for line in str(error).splitlines():
        if line.strip():
            return line.strip()
    return type(error).__name__
