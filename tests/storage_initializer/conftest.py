"""Fixtures for the storage initializer tests: real S3 endpoints (moto_server), a tiny model,
a pre-filled Hugging Face cache, and JobSpecs built through the public params classes."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.s3_server import MotoServer
from tests.storage_initializer.si_helpers import BUCKET, HUB_COMMIT, HUB_REPO


@pytest.fixture(autouse=True)
def isolated_aws(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """No AWS credentials or config from the machine leak into a test; no metadata-service probes."""
    for name in list(os.environ):
        if name.startswith("AWS_") or name.startswith("KUBETUNE_"):
            monkeypatch.delenv(name)
    nowhere = tmp_path_factory.getbasetemp() / "no-aws-config"
    monkeypatch.setenv("AWS_CONFIG_FILE", str(nowhere))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(nowhere))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture(scope="session")
def moto_open(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """A moto_server that accepts anonymous and any signed requests."""
    with MotoServer(log_path=tmp_path_factory.mktemp("moto") / "open.log") as server:
        server.client().create_bucket(Bucket=BUCKET)
        yield server


@pytest.fixture(scope="session")
def moto_auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[MotoServer, str, str]]:
    """A moto_server that checks signatures: (server, access key, secret key) of its one IAM user."""
    with MotoServer(log_path=tmp_path_factory.mktemp("moto") / "auth.log") as server:
        access_key, secret_key = server.create_access_key()
        server.enable_auth()
        server.client(access_key=access_key, secret_key=secret_key).create_bucket(Bucket=BUCKET)
        yield server, access_key, secret_key


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer BERT classifier with its tokenizer, saved once per session."""
    from tests.tiny_models import tiny_bert_classifier

    return tiny_bert_classifier(tmp_path_factory.mktemp("tiny-bert") / "model")


def _blob(cache_repo: Path, content: bytes) -> Path:
    blob = cache_repo / "blobs" / hashlib.sha256(content).hexdigest()
    blob.parent.mkdir(parents=True, exist_ok=True)
    blob.write_bytes(content)
    return blob


@pytest.fixture(scope="session")
def hf_cache(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> Path:
    """A Hugging Face hub cache (the layout snapshot_download reads offline) holding HUB_REPO.

    Besides the tiny model's files it holds files a fine-tuning job must not download: an ONNX
    export, PyTorch .bin weights next to safetensors, training_args.bin and a README.
    """
    cache = tmp_path_factory.mktemp("hf-home") / "hub"
    repo = cache / ("models--" + HUB_REPO.replace("/", "--"))
    snapshot = repo / "snapshots" / HUB_COMMIT
    files = {
        p.relative_to(tiny_model).as_posix(): p.read_bytes()
        for p in tiny_model.rglob("*")
        if p.is_file()
    }
    files |= {
        "onnx/model.onnx": b"not needed",
        "pytorch_model.bin": b"not needed either",
        "training_args.bin": b"pickled arguments",
        "README.md": b"# tiny bert\n",
    }
    for name, content in files.items():
        blob = _blob(repo, content)
        link = snapshot / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(HUB_COMMIT)
    return cache


@pytest.fixture
def offline_hub(monkeypatch: pytest.MonkeyPatch, hf_cache: Path) -> Path:
    """Points huggingface_hub (in this process and in children) at the pre-filled cache, offline."""
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_CACHE", str(hf_cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hf_cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return hf_cache
