"""Masked language modelling over a text column, with the MLM collator (15% of tokens masked)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from kubetune.contract.spec import TransformerType
from kubetune.runtime.errors import TrainerError
from kubetune.runtime.tasks import losses
from kubetune.runtime.tasks.base import (
    MapCache,
    Prepared,
    Task,
    model_max_length,
    pad_multiple,
    token_lengths,
)
from kubetune.runtime.tasks.causal_lm import perplexity

if TYPE_CHECKING:
    from datasets import Dataset
    from transformers import PreTrainedModel

MLM_PROBABILITY = 0.15


class MaskedLM(Task):
    transformer_type = TransformerType.MASKED_LM
    token_level_loss = True
    prediction_loss_only = True
    column_conventions: ClassVar[Mapping[str, tuple[str, ...]]] = {
        "text": ("text", "sentence", "content", "document")
    }
    required_roles = ("text",)

    def prepare(
        self,
        train: Dataset,
        eval: Dataset | None,
        processor: Any,
        model: PreTrainedModel,
        cache: MapCache,
    ) -> Prepared:
        from transformers import DataCollatorForLanguageModeling

        if processor.mask_token is None:
            raise TrainerError(
                "masked LM needs a tokenizer with a mask token; this tokenizer has none"
            )
        text = self.column("text")
        max_length = model_max_length(processor, model, "encoder", self.settings.max_length)

        def tokenize(batch: dict[str, list[Any]]) -> dict[str, Any]:
            encoded = processor(
                batch[text], truncation=True, max_length=max_length, return_special_tokens_mask=True
            )
            return dict(encoded)

        train_features, eval_features = cache.map_splits(train, eval, tokenize)
        return Prepared(
            train=train_features,
            eval=eval_features,
            collator=DataCollatorForLanguageModeling(
                processor,
                mlm=True,
                mlm_probability=MLM_PROBABILITY,
                pad_to_multiple_of=pad_multiple(),
            ),
            train_lengths=token_lengths(train_features),
        )

    def loss_function(self) -> Callable[..., torch.Tensor]:
        return losses.token_cross_entropy

    def derived_metrics(self, metrics: dict[str, float], prefix: str) -> dict[str, float]:
        return perplexity(metrics, prefix)
