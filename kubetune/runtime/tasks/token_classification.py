"""Token classification (NER): pre-split words and one tag per word, aligned to sub-words."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from peft import TaskType

from kubetune.contract.spec import TransformerType
from kubetune.runtime.tasks import losses, metrics
from kubetune.runtime.tasks.base import (
    IGNORE_INDEX,
    MapCache,
    Prepared,
    model_max_length,
    pad_multiple,
    require_fast_tokenizer,
    token_lengths,
)
from kubetune.runtime.tasks.labels import LabelledTask

if TYPE_CHECKING:
    from datasets import Dataset
    from transformers import EvalPrediction, PreTrainedModel


class TokenClassification(LabelledTask):
    transformer_type = TransformerType.TOKEN_CLASSIFICATION
    peft_task_type = TaskType.TOKEN_CLS
    token_level_loss = True
    column_conventions: ClassVar[Mapping[str, tuple[str, ...]]] = {
        "tokens": ("tokens", "words"),
        "tags": ("ner_tags", "tags", "labels", "label"),
    }
    required_roles = ("tokens", "tags")

    label_role = "tags"
    per_token_labels = True

    def prepare(
        self,
        train: Dataset,
        eval: Dataset | None,
        processor: Any,
        model: PreTrainedModel,
        cache: MapCache,
    ) -> Prepared:
        from transformers import DataCollatorForTokenClassification

        require_fast_tokenizer(processor, "token classification", "to align tags to sub-words")
        words, tags = self.column("tokens"), self.column("tags")
        max_length = model_max_length(processor, model, "encoder", self.settings.max_length)
        ids = self.labels.ids

        def tokenize(batch: dict[str, list[Any]]) -> dict[str, Any]:
            encoded = processor(
                batch[words], is_split_into_words=True, truncation=True, max_length=max_length
            )
            encoded["labels"] = [
                align_to_subwords(encoded.word_ids(i), [ids[t] for t in row])
                for i, row in enumerate(batch[tags])
            ]
            return dict(encoded)

        train_features, eval_features = cache.map_splits(train, eval, tokenize)
        return Prepared(
            train=train_features,
            eval=eval_features,
            collator=DataCollatorForTokenClassification(
                processor, pad_to_multiple_of=pad_multiple()
            ),
            compute_metrics=self.entity_metrics,
            preprocess_logits_for_metrics=argmax_logits,
            train_lengths=token_lengths(train_features),
        )

    def loss_function(self) -> Callable[..., torch.Tensor]:
        return losses.token_cross_entropy

    def entity_metrics(self, prediction: EvalPrediction) -> dict[str, float]:
        """Entity-level precision/recall/F1 (IOB tags) and token accuracy."""
        import numpy as np

        predicted = np.asarray(prediction.predictions)
        references = np.asarray(prediction.label_ids)
        names = self.labels.names
        pred_tags, true_tags = [], []
        for pred_row, true_row in zip(predicted, references, strict=True):
            keep = true_row != IGNORE_INDEX
            pred_tags.append([names[int(p)] for p in pred_row[keep]])
            true_tags.append([names[int(t)] for t in true_row[keep]])
        return metrics.entity_scores(pred_tags, true_tags)


def align_to_subwords(word_ids: list[int | None], word_labels: list[int]) -> list[int]:
    """One label per sub-word: the word's label on its first sub-word, IGNORE_INDEX elsewhere."""
    aligned, previous = [], None
    for word in word_ids:
        aligned.append(word_labels[word] if word is not None and word != previous else IGNORE_INDEX)
        previous = word
    return aligned


def argmax_logits(logits: Any, labels: Any) -> Any:
    """The predicted class of each token (reduces logits before they are gathered)."""
    if isinstance(logits, tuple):
        logits = logits[0]
    return logits.argmax(dim=-1)
