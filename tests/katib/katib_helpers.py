"""Helpers of the hyperparameter-search tests: Katib's LLM example as tune() arguments, polling."""

from __future__ import annotations

from pathlib import Path
from typing import Any

LLM_EXAMPLE = "llama"
LLM_NAMESPACE = "kubeflow"


def llm_example(model: Path | str, data: Path | str, **overrides: Any) -> dict[str, Any]:
    """Katib's documented LLM example (llm-hp-optimization.md), prefix swapped: tune() with
    learning_rate and LoRA r search spaces, train_loss minimized, random search, 2 trials at
    once, TrainerResources; the hub's Llama-3.2-1B and imdb replaced by a tiny local BERT and a
    small CSV, the trial shortened to one epoch of 64 rows, and 2 trials instead of 10."""
    import transformers
    from peft import LoraConfig

    import kubetune.katib as katib
    from kubetune.storage_initializer.hugging_face import (
        HuggingFaceModelParams,
        HuggingFaceTrainerParams,
    )
    from kubetune.storage_initializer.local import LocalDatasetParams

    hf_model = HuggingFaceModelParams(
        model_uri=str(model),
        transformer_type=transformers.AutoModelForSequenceClassification,
    )
    hf_dataset = LocalDatasetParams(path=str(data))
    arguments = {
        "name": LLM_EXAMPLE,
        "model_provider_parameters": hf_model,
        "dataset_provider_parameters": hf_dataset,
        "trainer_parameters": HuggingFaceTrainerParams(
            training_parameters=transformers.TrainingArguments(
                output_dir="results",
                save_strategy="no",
                learning_rate=katib.search.double(min=1e-05, max=5e-05),
                num_train_epochs=1,
                logging_steps=2,
                disable_tqdm=True,
                report_to="none",
            ),
            lora_config=LoraConfig(
                r=katib.search.int(min=8, max=32), lora_alpha=8, lora_dropout=0.1, bias="none"
            ),
        ),
        "objective_metric_name": "train_loss",
        "objective_type": "minimize",
        "algorithm_name": "random",
        "max_trial_count": 2,
        "parallel_trial_count": 2,
        "resources_per_trial": katib.TrainerResources(
            num_workers=1,
            num_procs_per_worker=1,
            resources_per_worker={"gpu": 0, "cpu": 1, "memory": "1G"},
        ),
    }
    arguments.update(overrides)
    return arguments


def no_process_in(folder: Path) -> list[int]:
    """The pids of live processes that run in `folder` (their working directory) or below."""
    from kubetune.training.backends.local import processes

    return [p.pid for p in processes.processes_in(folder)] if folder.exists() else []
