"""Training by a TRL method (SFT, DPO, ORPO, KTO): its trainer, and what its logs add to the
final metrics.

The model reaches the trainer unwrapped, with the job's LoRA config as `peft_config`: TRL wraps
it, and DPO and KTO then compute the reference model's log-probabilities with the adapter
disabled, so no second copy of the model is loaded (full fine-tuning loads one, as TRL does).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kubetune.contract.causal_lm import TrainingMethod, trainer_class

if TYPE_CHECKING:
    from peft import LoraConfig
    from transformers import TrainerCallback, TrainingArguments

    from kubetune.runtime.tasks import Prepared

# What the Trainer logs about the run itself, not about the model (left out of the final metrics).
RUN_KEYS = frozenset({"loss", "grad_norm", "learning_rate", "epoch", "step"})


def build_trl_trainer(
    method: TrainingMethod,
    args: TrainingArguments,
    model: Any,
    processor: Any,
    prepared: Prepared,
    peft_config: LoraConfig | None,
    callbacks: list[TrainerCallback],
) -> Any:
    """The TRL trainer of `method` over the prepared splits (TRL tokenises them here)."""
    trainer = trainer_class(method)
    return trainer(
        model=model,
        args=args,
        train_dataset=prepared.train,
        eval_dataset=prepared.eval,
        processing_class=processor,
        peft_config=peft_config,
        callbacks=callbacks,
    )


def last_logged_metrics(log_history: list[dict[str, Any]]) -> dict[str, float]:
    """The latest value the run logged of each of the method's own training metrics
    (rewards/margins, rewards/accuracies, mean_token_accuracy, ...), as train_<name>."""
    metrics: dict[str, float] = {}
    for entry in log_history:
        if "loss" not in entry:  # evaluations and the final summary
            continue
        for key, value in entry.items():
            if key not in RUN_KEYS and isinstance(value, int | float):
                metrics[f"train_{key}"] = value
    return metrics
