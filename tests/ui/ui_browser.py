"""Helpers of the dashboard's browser tests: a page that records its console errors, polling the
page for a condition, and screenshots for docs/ui.md."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest

# Seconds a tiny job or search may take to start or finish on a busy 2-core machine.
TIMEOUT = 240.0


class Watched:
    """A page and the console errors it logged; `allow` names errors a test expects."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.errors: list[str] = []
        self.allowed: list[str] = []
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))

    def unexpected(self) -> list[str]:
        """The console errors no test expected."""
        return [e for e in self.errors if not any(re.search(a, e) for a in self.allowed)]


def wait_true(page: Any, expression: str, timeout: float = TIMEOUT) -> None:
    """Polls a JavaScript expression until it is true (Playwright's wait_for_function polls with
    eval, which the page's Content-Security-Policy forbids, as it should)."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {expression}")
        time.sleep(0.1)


def screenshot(page: Any, path: Path, whole: bool = False) -> None:
    """The page down to the end of its content (`whole`), or as far as the window shows."""
    bottom = page.evaluate("document.querySelector('main').getBoundingClientRect().bottom")
    height = bottom if whole else min(bottom, page.viewport_size["height"])
    page.screenshot(
        path=path, full_page=True, clip={"x": 0, "y": 0, "width": 1280, "height": height}
    )
