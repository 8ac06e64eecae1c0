"""The registry of tasks: one module per transformer type, looked up by the type's class name."""

from __future__ import annotations

from kubetune.trainer.errors import TrainerError
from kubetune.trainer.tasks.base import Prepared, Task, TaskSettings
from kubetune.trainer.tasks.causal_lm import CausalLM
from kubetune.trainer.tasks.image_classification import ImageClassification
from kubetune.trainer.tasks.masked_lm import MaskedLM
from kubetune.trainer.tasks.question_answering import QuestionAnswering
from kubetune.trainer.tasks.sequence_classification import SequenceClassification
from kubetune.trainer.tasks.token_classification import TokenClassification

TASKS: dict[str, type[Task]] = {
    task.transformer_type: task
    for task in (
        SequenceClassification,
        TokenClassification,
        QuestionAnswering,
        CausalLM,
        MaskedLM,
        ImageClassification,
    )
}

__all__ = ["TASKS", "Prepared", "Task", "TaskSettings", "task_for"]


def task_for(transformer_type: str, settings: TaskSettings) -> Task:
    """The task for a transformer type name such as 'AutoModelForSequenceClassification'."""
    if transformer_type not in TASKS:
        raise TrainerError(
            f"transformer_type={transformer_type!r}: not supported; allowed: {', '.join(TASKS)}"
        )
    return TASKS[transformer_type](settings)
