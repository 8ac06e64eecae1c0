"""How problems with a job are reported: collected, then raised together in one ValueError."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class InvalidJob(ValueError):
    """One or more problems with a job's arguments or record; `problems` lists them, `what` says
    whose they are (e.g. "train(name='x')")."""

    def __init__(self, what: str, problems: list[str]) -> None:
        self.what = what
        self.problems = list(problems)
        if len(self.problems) == 1:
            text = f"{what}: {self.problems[0]}"
        else:
            listing = "\n".join(f"  - {p}" for p in self.problems)
            text = f"{what}: {len(self.problems)} problems:\n{listing}"
        super().__init__(text)


class Problems:
    """Collects validation messages for one object and raises them together."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.messages: list[str] = []

    def add(self, message: str | None) -> None:
        """Records `message`; None and "" (no problem found) are skipped."""
        if message:
            self.messages.append(message)

    def extend(self, messages: Iterable[str | None]) -> None:
        """Records every message of `messages` (skipping None and "")."""
        for message in messages:
            self.add(message)

    def raise_if_any(self) -> None:
        """Returns when no problem was recorded.

        Raises:
            InvalidJob: (a ValueError) listing every recorded message.
        """
        if self.messages:
            raise InvalidJob(self.what, self.messages)


def shown(value: Any) -> str:
    """`repr(value)`, shortened so that a huge number or text cannot flood an error message."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**30:
        digits = len(str(abs(value))) if abs(value) < 10**4000 else "over 4000"
        return f"<an integer of {digits} digits>"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
