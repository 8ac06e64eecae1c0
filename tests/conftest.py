"""Test-wide settings: offline hubs, local jobs, the path to ../shared/.

`tests` is a package (pytest's `pythonpath` puts the repository on the import path): helpers are
imported as `tests.tiny_models`, `tests.kubernetes.fake_apiserver`, ...
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
SHARED = REPO.parent / "shared"

# No hub can be reached here: every test runs offline, as the tool must on an air-gapped node.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Jobs run on this machine even where CI itself runs in a Kubernetes pod (where TrainingClient()
# would choose the cluster); tests of the backend rule unset it.
os.environ.setdefault("KUBETUNE_BACKEND", "local")


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The project's shared folder (CRD schemas, seed docs) beside the checkout; skips when absent."""
    if not SHARED.is_dir():
        pytest.skip(
            f"{SHARED} is absent: the shared folder with the CRD schemas and seed docs lies beside the checkout in CI"
        )
    return SHARED


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny BERT sequence classifier (2 labels) with its tokenizer, saved once per session."""
    from tests.tiny_models import tiny_bert_classifier

    return tiny_bert_classifier(tmp_path_factory.mktemp("tiny-bert"), num_labels=2)


@pytest.fixture(scope="session")
def sentiment_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CSV of 64 labelled sentences (text, label), written once per session."""
    from tests.tiny_models import sentiment_csv

    return sentiment_csv(tmp_path_factory.mktemp("data") / "sentiment.csv", n=64)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This test's KUBETUNE_HOME (also set in the environment, for the CLI and subprocesses)."""
    path = tmp_path / "kubetune-home"
    monkeypatch.setenv("KUBETUNE_HOME", str(path))
    return path
