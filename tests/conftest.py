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
