"""Helpers for the local backend tests: the seed's BERT job on tiny local data, status, polling."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kubetune.training.backends.local.jobdir import JobDir, JobStatus, job_dir


def bert_job(
    name: str,
    model: Path,
    data: Path,
    num_workers: int = 2,
    access_token: str | None = None,
    columns: dict[str, str] | None = None,
    **training: Any,
) -> dict[str, Any]:
    """train() keyword arguments: the seed's BERT example on a tiny local model and CSV."""
    import transformers
    from peft import LoraConfig

    from kubetune.storage_initializer.hugging_face import (
        HuggingFaceModelParams,
        HuggingFaceTrainerParams,
    )
    from kubetune.storage_initializer.local import LocalDatasetParams

    arguments = {
        "output_dir": "test_trainer",
        "save_strategy": "no",
        "eval_strategy": "no",
        "do_eval": False,
        "disable_tqdm": True,
        "log_level": "info",
        "logging_steps": 1,
        "per_device_train_batch_size": 8,
        "report_to": "none",
        **training,
    }
    return {
        "name": name,
        "model_provider_parameters": HuggingFaceModelParams(
            model_uri=str(model),
            transformer_type=transformers.AutoModelForSequenceClassification,
            access_token=access_token,
        ),
        "dataset_provider_parameters": LocalDatasetParams(path=str(data)),
        "trainer_parameters": HuggingFaceTrainerParams(
            training_parameters=transformers.TrainingArguments(**arguments),
            lora_config=LoraConfig(r=8, lora_alpha=8, lora_dropout=0.1, bias="none"),
            columns=columns,
        ),
        "num_workers": num_workers,
        "num_procs_per_worker": 1,
        "resources_per_worker": {"cpu": 1, "memory": "1G"},
    }


def status_of(home: Path, name: str, namespace: str = "default") -> JobStatus:
    status = job_dir(home, namespace, name).read_status()
    assert status is not None, f"job {namespace}/{name} has no status.json"
    return status


def the_job_dir(home: Path, name: str, namespace: str = "default") -> JobDir:
    return job_dir(home, namespace, name)


def wait_until(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    """Polls `condition` until it returns something truthy; fails the test after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    pytest.fail(f"timed out after {timeout:g} s waiting for {what}")
