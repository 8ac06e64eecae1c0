"""kubetune: fine-tune Hugging Face models (LoRA or full) on distributed PyTorch workers.

Public names are imported lazily, so `import kubetune` stays fast and pulls in torch and
transformers only when a params class or the client is first used.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "TrainingClient": "kubetune.training.api.training_client",
    "JobSpec": "kubetune.contract.spec",
    "JobReport": "kubetune.training.job",
    "JobCondition": "kubetune.contract.conditions",
    "LogLine": "kubetune.training.job",
    "HuggingFaceModelParams": "kubetune.params.hugging_face",
    "HuggingFaceDatasetParams": "kubetune.params.hugging_face",
    "HuggingFaceTrainerParams": "kubetune.params.hugging_face",
    "TRANSFORMER_TYPES": "kubetune.params.hugging_face",
    "S3DatasetParams": "kubetune.params.s3",
    "LocalDatasetParams": "kubetune.params.local",
    "KatibClient": "kubetune.katib.api.katib_client",
    "TrainerResources": "kubetune.katib.types.types",
    "ExperimentReport": "kubetune.katib.report",
    "TrialReport": "kubetune.katib.report",
    "DatasetMix": "kubetune.params.mix",
    "MixedDataset": "kubetune.params.mix",
    "pipeline_for_job": "kubetune.inference.pipelines",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'kubetune' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(__all__)
