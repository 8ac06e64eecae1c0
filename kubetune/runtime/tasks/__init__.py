"""The registry of tasks: one module per transformer type, looked up by the type's class name."""

from __future__ import annotations

from kubetune.contract.spec import TransformerType
from kubetune.runtime.errors import TrainerError
from kubetune.runtime.tasks.base import Prepared, Task, TaskSettings
from kubetune.runtime.tasks.causal_lm import CausalLM
from kubetune.runtime.tasks.image_classification import ImageClassification
from kubetune.runtime.tasks.masked_lm import MaskedLM
from kubetune.runtime.tasks.question_answering import QuestionAnswering
from kubetune.runtime.tasks.sequence_classification import SequenceClassification
from kubetune.runtime.tasks.token_classification import TokenClassification

TASKS: dict[TransformerType, type[Task]] = {
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


def task_for(transformer_type: TransformerType | str, settings: TaskSettings) -> Task:
    """The task for a transformer type (or its name, 'AutoModelForSequenceClassification').

    Raises:
        TrainerError: the type has no task.
    """
    if transformer_type not in TASKS:
        raise TrainerError(
            f"transformer_type={transformer_type!r}: not supported; allowed: {', '.join(TASKS)}"
        )
    return TASKS[TransformerType(transformer_type)](settings)
