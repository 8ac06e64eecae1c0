"""Reading a server-sent event stream in the dashboard's tests."""

from __future__ import annotations

import json
from typing import Any

import httpx


class Events:
    """The events of a server-sent event stream, read as they come (keep-alive comments skipped)."""

    def __init__(self, response: httpx.Response) -> None:
        self.lines = response.iter_lines()

    def next(self, count: int = 1) -> list[tuple[str, Any]]:
        events: list[tuple[str, Any]] = []
        event = ""
        for line in self.lines:
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                events.append((event, json.loads(line[6:])))
                if len(events) == count:
                    break
        return events

    def until(self, kind: str) -> Any:
        """The data of the next event of `kind` (those before it are skipped)."""
        while True:
            ((event, data),) = self.next()
            if event == kind:
                return data
