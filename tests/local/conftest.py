"""Fixtures for the local backend: a private KUBETUNE_HOME per test, a tiny BERT, a small CSV.

Every job a test leaves behind is deleted at teardown, so a failing test leaves no processes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.tiny_models import tiny_bert_classifier

    return tiny_bert_classifier(tmp_path_factory.mktemp("tiny-bert"), num_labels=2)


@pytest.fixture(scope="session")
def sentiment_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.tiny_models import sentiment_csv

    return sentiment_csv(tmp_path_factory.mktemp("data") / "sentiment.csv", n=64)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This test's KUBETUNE_HOME (also set in the environment, for subprocesses)."""
    path = tmp_path / "kubetune-home"
    monkeypatch.setenv("KUBETUNE_HOME", str(path))
    return path


@pytest.fixture
def client(home: Path) -> Iterator[Any]:
    """A local TrainingClient on this test's home; deletes whatever jobs remain at the end."""
    from kubetune.training import TrainingClient

    training_client = TrainingClient(backend="local", home=home)
    yield training_client
    for namespace_dir in (home / "jobs").glob("*"):
        for job in training_client.list_job_reports(namespace=namespace_dir.name):
            training_client.delete_job(job.name, namespace=job.namespace)
