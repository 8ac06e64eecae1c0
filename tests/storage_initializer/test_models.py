"""Models from a pre-filled Hugging Face cache (offline, the real snapshot_download), from a
local folder (in place, or hard-linked/copied), and from an S3 prefix; each loads with
AutoModelForSequenceClassification.from_pretrained(layout.Workspace(DIR).model_path())."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from kubetune.contract import layout
from kubetune.contract.secrets import MODEL_TOKEN_ENV
from kubetune.storage_initializer.initialize import initialize
from kubetune.storage_initializer.local import LocalDatasetParams
from kubetune.storage_initializer.model_fetch import COPY_LOCAL_MODEL_ENV, select_model_files
from kubetune.storage_initializer.s3 import S3DatasetParams
from tests.storage_initializer.si_helpers import BUCKET, HUB_REPO, make_spec, upload_tree


@pytest.fixture(scope="module")
def dataset_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.tiny_models import sentiment_csv

    return sentiment_csv(tmp_path_factory.mktemp("data") / "reviews.csv", n=16)


def _loads(workspace: Path, tiny_model: Path) -> None:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    folder = layout.Workspace(Path(workspace)).model_path()
    model = AutoModelForSequenceClassification.from_pretrained(folder)
    reference = AutoModelForSequenceClassification.from_pretrained(tiny_model)
    for (name, value), (_, expected) in zip(
        model.state_dict().items(), reference.state_dict().items(), strict=True
    ):
        assert torch.equal(value, expected), name
    assert AutoTokenizer.from_pretrained(folder)("good movie")["input_ids"]


def test_model_from_prefilled_hub_cache_offline(
    offline_hub: Path, tiny_model: Path, dataset_csv: Path, tmp_path: Path
) -> None:
    spec, secrets = make_spec(
        f"hf://{HUB_REPO}",
        LocalDatasetParams(path=str(dataset_csv)),
        model_token="hf_test_token_value",
    )
    assert secrets == {MODEL_TOKEN_ENV: "hf_test_token_value"}

    summary = initialize(spec, tmp_path / "ws", env=secrets)

    model_dir = tmp_path / "ws" / layout.MODEL_DIR
    assert layout.Workspace(Path(tmp_path / "ws")).model_path() == model_dir
    names = sorted(p.relative_to(model_dir).as_posix() for p in model_dir.rglob("*") if p.is_file())
    assert {"model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json"} <= set(
        names
    )
    # Only what from_pretrained needs: no ONNX export, no .bin weights beside safetensors, no training state.
    assert not {"onnx/model.onnx", "pytorch_model.bin", "training_args.bin", "README.md"} & set(
        names
    )
    assert not any(p.is_symlink() for p in model_dir.rglob("*")), (
        "model files must not point into the cache"
    )
    assert summary.marker.model.in_place is False and summary.marker.model.files == len(names)
    _loads(tmp_path / "ws", tiny_model)


def test_model_from_local_folder_is_used_in_place(
    tiny_model: Path, dataset_csv: Path, tmp_path: Path
) -> None:
    spec, _ = make_spec(str(tiny_model), LocalDatasetParams(path=str(dataset_csv)))

    summary = initialize(spec, tmp_path / "ws", env={})

    assert (tmp_path / "ws" / layout.MODEL_LINK_FILE).is_file()
    assert not (tmp_path / "ws" / layout.MODEL_DIR).exists()
    assert layout.Workspace(Path(tmp_path / "ws")).model_path() == tiny_model.resolve()
    assert summary.marker.model.in_place is True
    _loads(tmp_path / "ws", tiny_model)


def test_model_from_file_uri_copied_on_request(
    tiny_model: Path, dataset_csv: Path, tmp_path: Path
) -> None:
    spec, _ = make_spec(f"file://{tiny_model}", LocalDatasetParams(path=str(dataset_csv)))

    initialize(spec, tmp_path / "ws", env={COPY_LOCAL_MODEL_ENV: "1"})

    model_dir = tmp_path / "ws" / layout.MODEL_DIR
    assert layout.Workspace(Path(tmp_path / "ws")).model_path() == model_dir
    assert not (tmp_path / "ws" / layout.MODEL_LINK_FILE).exists()
    weights = model_dir / "model.safetensors"
    assert weights.stat().st_size == (tiny_model / "model.safetensors").stat().st_size
    _loads(tmp_path / "ws", tiny_model)


def test_model_from_s3_prefix(moto_open: Any, tiny_model: Path, tmp_path: Path) -> None:
    """An S3 model shares the S3 dataset's endpoint; a checkpoint folder below the prefix is skipped."""
    client = moto_open.client()
    upload_tree(client, BUCKET, tiny_model, "models/tiny-bert/", public=True)
    client.put_object(
        Bucket=BUCKET,
        Key="models/tiny-bert/checkpoint-10/optimizer.pt",
        Body=b"x",
        ACL="public-read",
    )
    from tests.tiny_models import sentiment_csv

    sentiment_csv(tmp_path / "d" / "reviews.csv", n=12)
    upload_tree(client, BUCKET, tmp_path / "d", "for-model-test/", public=True)
    dataset = S3DatasetParams(
        endpoint_url=moto_open.url, bucket_name=BUCKET, file_key="for-model-test/reviews.csv"
    )
    spec, _ = make_spec(f"s3://{BUCKET}/models/tiny-bert", dataset)

    initialize(spec, tmp_path / "ws", env={})

    assert not (tmp_path / "ws" / layout.MODEL_DIR / "checkpoint-10").exists()
    _loads(tmp_path / "ws", tiny_model)


def test_model_file_selection() -> None:
    files = [
        "config.json",
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
        "model.safetensors.index.json",
        "pytorch_model.bin",
        "tokenizer.json",
        "tokenizer.model",
        "chat_template.jinja",
        "vocab.txt",
        "onnx/model.onnx",
        "onnx/config.json",
        "original/consolidated.00.pth",
        ".gitattributes",
        "training_args.bin",
        "1_Pooling/config.json",
    ]
    assert select_model_files(files) == sorted(
        [
            "1_Pooling/config.json",
            "chat_template.jinja",
            "config.json",
            "model-00001-of-00002.safetensors",
            "model-00002-of-00002.safetensors",
            "model.safetensors.index.json",
            "tokenizer.json",
            "tokenizer.model",
            "vocab.txt",
        ]
    )
    # Without safetensors the PyTorch weights are the weights (but training state never is).
    assert select_model_files(["config.json", "pytorch_model.bin", "training_args.bin"]) == [
        "config.json",
        "pytorch_model.bin",
    ]


def test_initializer_never_loads_the_model(
    offline_hub: Path, dataset_csv: Path, tmp_path: Path
) -> None:
    """Files are fetched, not models: neither torch nor transformers is imported by a run; the
    Hugging Face cache the files are linked from is left as it was."""
    import subprocess
    import sys

    spec, _ = make_spec(f"hf://{HUB_REPO}", LocalDatasetParams(path=str(dataset_csv)))
    (tmp_path / "spec.json").write_text(spec.to_json())
    probe = (
        "import sys\n"
        "from kubetune.storage_initializer.__main__ import main\n"
        f"sys.argv = ['x', '--spec', {str(tmp_path / 'spec.json')!r}, '--workspace', {str(tmp_path / 'ws')!r}]\n"
        "code = main()\n"
        "print(code, sorted(m for m in ('torch', 'transformers', 'peft') if m in sys.modules))\n"
    )
    cache_before = {
        p: (p.stat().st_mtime_ns, p.stat().st_size) for p in offline_hub.rglob("*") if p.is_file()
    }
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ),
    )
    assert result.stdout.strip() == "0 []", result.stderr
    assert (tmp_path / "ws" / layout.MODEL_DIR / "model.safetensors").is_file()
    assert {
        p: (p.stat().st_mtime_ns, p.stat().st_size) for p in offline_hub.rglob("*") if p.is_file()
    } == cache_before
