"""LoRA through PEFT, with the task type chosen so that a new task head is trained too."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kubetune.runtime.errors import TrainerError

if TYPE_CHECKING:
    from peft import LoraConfig

    from kubetune.contract.causal_lm import TrainingMethod
    from kubetune.runtime.tasks import Task


def apply_lora(model: Any, config: LoraConfig | None, task: Task) -> Any:
    """The model wrapped with LoRA adapters (see `lora_for`); unchanged for full fine-tuning
    (config None)."""
    config = lora_for(model, config, task)
    if config is None:
        return model
    from peft import get_peft_model

    try:
        return get_peft_model(model, config)
    except ValueError as e:
        raise TrainerError(
            f"lora_config: PEFT cannot apply it to this {type(model).__name__} "
            f"(model_type={getattr(model.config, 'model_type', None)!r}): {e}; "
            "set target_modules to module names of the model, e.g. ['query', 'value']"
        ) from e


def prepare_lora(
    model: Any, config: LoraConfig | None, task: Task, method: TrainingMethod | None
) -> tuple[Any, LoraConfig | None]:
    """The model for the trainer and the LoRA config left for the trainer to apply: the
    Trainer gets the model wrapped here; a TRL method's trainer gets it unwrapped with the
    config as its `peft_config`, so that DPO and KTO take the model with its adapter disabled
    as the reference (a model wrapped here would get a copy of its adapter instead)."""
    if method is None:
        return apply_lora(model, config, task), None
    return model, lora_for(model, config, task)


def lora_for(model: Any, config: LoraConfig | None, task: Task) -> LoraConfig | None:
    """The LoRA config completed for the model and task (None for full fine-tuning); a TRL
    trainer gets it as its `peft_config` and wraps the model itself.

    Without a `task_type` in the config, the task's PEFT task type is set, so the new head
    (e.g. the classifier) is trained fully instead of staying frozen at its random start;
    where PEFT has no task type (images), the head is added to `modules_to_save`. Without
    `target_modules` for an architecture PEFT has no default for, all linear layers are adapted.
    """
    if config is None:
        return None
    if (
        config.target_modules is None
        and config.target_parameters is None
        and not _has_peft_default(model)
    ):
        # PEFT knows default target modules for common architectures only (not e.g. ViT).
        config.target_modules = "all-linear"
    if config.task_type is None and task.peft_task_type is not None:
        config.task_type = task.peft_task_type
    if config.task_type is None and task.head_modules:
        heads = [name for name, _ in model.named_children() if name in task.head_modules]
        config.modules_to_save = sorted({*(config.modules_to_save or []), *heads})
    return config


def _has_peft_default(model: Any) -> bool:
    from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING

    return (
        getattr(model.config, "model_type", None)
        in TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING
    )
