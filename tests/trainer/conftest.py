"""Fixtures of the runtime tests (their helpers are in trainer_jobs.py)."""

from __future__ import annotations

from types import ModuleType

import pytest


@pytest.fixture
def tiny_models() -> ModuleType:
    """The module that builds tiny models offline (tests/tiny_models.py)."""
    from tests import tiny_models as module

    return module
