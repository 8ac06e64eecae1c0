"""Text classification: one text or a text pair, and a label (ids or strings)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from peft import TaskType

from kubetune.contract.spec import TransformerType
from kubetune.runtime.tasks import metrics
from kubetune.runtime.tasks.base import (
    MapCache,
    Prepared,
    model_max_length,
    pad_multiple,
    token_lengths,
)
from kubetune.runtime.tasks.labels import LabelledTask

if TYPE_CHECKING:
    from datasets import Dataset
    from transformers import EvalPrediction, PreTrainedModel


class SequenceClassification(LabelledTask):
    transformer_type = TransformerType.SEQUENCE_CLASSIFICATION
    peft_task_type = TaskType.SEQ_CLS
    column_conventions: ClassVar[Mapping[str, tuple[str, ...]]] = {
        "text": ("text", "sentence", "sentence1", "content", "review", "document", "premise"),
        "text_pair": ("text_pair", "sentence2", "hypothesis"),
        "label": ("label", "labels", "class", "target"),
    }
    required_roles = ("text", "label")

    def prepare(
        self,
        train: Dataset,
        eval: Dataset | None,
        processor: Any,
        model: PreTrainedModel,
        cache: MapCache,
    ) -> Prepared:
        from transformers import DataCollatorWithPadding

        if processor.pad_token_id is None and processor.eos_token is not None:
            processor.pad_token = processor.eos_token  # decoder models: pad with end-of-sequence
        if getattr(model.config, "pad_token_id", None) is None:
            model.config.pad_token_id = processor.pad_token_id  # lets the head find the last token
        text, pair, label = self.column("text"), self.columns["text_pair"], self.column("label")
        max_length = model_max_length(processor, model, "encoder", self.settings.max_length)
        ids = self.labels.ids

        def tokenize(batch: dict[str, list[Any]]) -> dict[str, Any]:
            encoded = processor(
                batch[text], batch[pair] if pair else None, truncation=True, max_length=max_length
            )
            encoded["labels"] = [ids[v] for v in batch[label]]
            return dict(encoded)

        train_features, eval_features = cache.map_splits(train, eval, tokenize)
        return Prepared(
            train=train_features,
            eval=eval_features,
            collator=DataCollatorWithPadding(processor, pad_to_multiple_of=pad_multiple()),
            compute_metrics=classification_metrics,
            train_lengths=token_lengths(train_features),
        )


def classification_metrics(prediction: EvalPrediction) -> dict[str, float]:
    """Accuracy and macro-F1 from logits."""
    import numpy as np

    logits = (
        prediction.predictions[0]
        if isinstance(prediction.predictions, tuple)
        else prediction.predictions
    )
    predicted = np.asarray(logits).argmax(-1).tolist()
    references = np.asarray(prediction.label_ids).tolist()
    return {
        "accuracy": metrics.accuracy(predicted, references),
        "f1": metrics.macro_f1(predicted, references),
    }
