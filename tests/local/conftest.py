"""Fixtures for the local backend: a TrainingClient on the test's KUBETUNE_HOME (the tiny BERT,
the small CSV and the home are tests/conftest.py's).

Every job a test leaves behind is deleted at teardown, so a failing test leaves no processes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def client(home: Path) -> Iterator[Any]:
    """A local TrainingClient on this test's home; deletes whatever jobs remain at the end."""
    from kubetune.training import TrainingClient

    training_client = TrainingClient(backend="local", home=home)
    yield training_client
    for namespace_dir in (home / "jobs").glob("*"):
        for job in training_client.list_job_reports(namespace=namespace_dir.name):
            training_client.delete_job(job.name, namespace=job.namespace)
