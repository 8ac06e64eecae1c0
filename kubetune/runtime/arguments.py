"""The user's `TrainingArguments` (or TRL config) and `LoraConfig`, rebuilt from the fields a
TrainerSpec records."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kubetune.contract.causal_lm import config_class, record_defaults
from kubetune.contract.spec import TrainerSpec

if TYPE_CHECKING:
    from peft import LoraConfig
    from transformers import TrainingArguments


def rebuild_training_arguments(trainer: TrainerSpec, **overrides: Any) -> TrainingArguments:
    """The `TrainingArguments` (or TRL config of the spec's method) the user gave, rebuilt, with
    `overrides` set on top.

    Raises:
        ValueError, TypeError: transformers or TRL refuses the values (e.g. from another version).
    """
    config = config_class(trainer.method)
    arguments: TrainingArguments = config(
        **{**record_defaults(trainer.method), **trainer.training_arguments, **overrides}
    )
    return arguments


def rebuild_lora_config(trainer: TrainerSpec) -> LoraConfig | None:
    """The `LoraConfig` the user gave, rebuilt; None for full fine-tuning.

    Raises:
        ValueError, TypeError: PEFT refuses the values.
    """
    if trainer.lora_config is None:
        return None
    from peft import LoraConfig

    return LoraConfig(**trainer.lora_config)
