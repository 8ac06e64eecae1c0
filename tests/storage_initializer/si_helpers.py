"""Helpers shared by the storage initializer tests: JobSpecs, the CLI, S3 uploads."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from kubetune.contract.spec import JobSpec

BUCKET = "kubetune-data"
HUB_REPO = "kubetune-test/tiny-bert"
HUB_COMMIT = "0123456789abcdef0123456789abcdef01234567"
CLI = [sys.executable, "-m", "kubetune.storage_initializer"]


def make_spec(
    model_uri: str, dataset: Any, *, model_token: str | None = None, name: str = "init-test"
) -> tuple[JobSpec, dict[str, str]]:
    """A JobSpec and its secret env vars, built the way TrainingClient.train builds them."""
    import transformers

    from kubetune.params.job import build_job_spec
    from kubetune.storage_initializer.hugging_face import (
        HuggingFaceModelParams,
        HuggingFaceTrainerParams,
    )

    return build_job_spec(
        name=name,
        model_provider_parameters=HuggingFaceModelParams(
            model_uri=model_uri,
            transformer_type=transformers.AutoModelForSequenceClassification,
            access_token=model_token,
        ),
        dataset_provider_parameters=dataset,
        trainer_parameters=HuggingFaceTrainerParams(
            training_parameters=transformers.TrainingArguments(output_dir="out", report_to="none"),
            lora_config=None,
        ),
    )


def run_cli(spec: JobSpec, workspace: Path, env: dict[str, str], *extra: str) -> Any:
    """Runs `python -m kubetune.storage_initializer` to completion; returns the CompletedProcess."""
    spec_file = workspace.parent / f"{workspace.name}-spec.json"
    spec_file.write_text(spec.to_json())
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "kubetune.storage_initializer",
            "--spec",
            str(spec_file),
            "--workspace",
            str(workspace),
            *extra,
        ],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


def upload_tree(
    client: Any, bucket: str, folder: Path, prefix: str, public: bool = False
) -> list[str]:
    """Uploads every file below `folder` to `prefix` + its relative path; returns the keys.

    `public` grants anonymous read (ACL public-read), as on a public dataset bucket.
    """
    keys = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        key = prefix + path.relative_to(folder).as_posix()
        client.upload_file(
            str(path), bucket, key, ExtraArgs={"ACL": "public-read"} if public else None
        )
        keys.append(key)
    return keys


def load_workspace_dataset(workspace: Path) -> Any:
    """The DatasetDict the trainer would read from the workspace."""
    import datasets

    from kubetune.contract import layout

    return datasets.load_from_disk(str(workspace / layout.DATASET_DIR))


def files_under(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()]
