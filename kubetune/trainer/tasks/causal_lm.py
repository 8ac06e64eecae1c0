"""Causal language modelling: plain text, prompt/completion, alpaca-style instructions, chat messages.

With a prompt/completion split (including instructions and chats) the loss covers only the
completion; `packing` concatenates samples into full `max_length` blocks.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from kubetune.trainer.errors import TrainerError
from kubetune.trainer.tasks import losses
from kubetune.trainer.tasks.base import (
    IGNORE_INDEX,
    MapCache,
    Prepared,
    Task,
    model_max_length,
    pad_multiple,
    token_lengths,
)

if TYPE_CHECKING:
    from datasets import Dataset
    from transformers import PreTrainedModel

ALPACA_PROMPT = (
    "Below is an instruction that describes a task{with_input}. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n{input_block}### Response:\n"
)
# The formats, by the roles each needs; the first one whose columns are all found is used.
FORMATS = {
    "messages": ("messages",),
    "prompt_completion": ("prompt", "completion"),
    "instruction": ("instruction", "output"),
    "text": ("text",),
}


class CausalLM(Task):
    transformer_type = "AutoModelForCausalLM"
    peft_task_type = "CAUSAL_LM"
    token_level_loss = True
    prediction_loss_only = True
    column_conventions: ClassVar[Mapping[str, tuple[str, ...]]] = {
        "messages": ("messages", "conversations", "conversation"),
        "prompt": ("prompt",),
        "completion": ("completion", "response"),
        "instruction": ("instruction",),
        "input": ("input", "context"),
        "output": ("output",),
        "text": ("text", "content"),
    }

    def resolve_columns(self, dataset_columns: list[str]) -> dict[str, str | None]:
        super().resolve_columns(dataset_columns)
        explicit = set(self.settings.columns)
        found = [f for f, roles in FORMATS.items() if all(self.columns.get(r) for r in roles)]
        chosen = [f for f in found if explicit & set(FORMATS[f])] or found
        if not chosen:
            formats = "; ".join(f"{name}: {list(roles)}" for name, roles in FORMATS.items())
            raise TrainerError(
                f"{self.transformer_type}: cannot find the columns of any data format ({formats}); "
                f"the dataset has columns {dataset_columns}; name them with "
                "HuggingFaceTrainerParams(columns={'text': '<column>'})"
            )
        self.format = chosen[0]
        return self.columns

    def prepare(
        self,
        train: Dataset,
        eval: Dataset | None,
        processor: Any,
        model: PreTrainedModel,
        cache: MapCache,
    ) -> Prepared:
        tokenizer = processor
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = (
                tokenizer.eos_token if tokenizer.eos_token is not None else tokenizer.unk_token
            )
        max_length = model_max_length(tokenizer, model, "decoder", self.settings.max_length)
        encode = SampleEncoder(tokenizer, self.format, self.columns, max_length)

        def tokenize(batch: dict[str, list[Any]]) -> dict[str, Any]:
            rows = [
                dict(zip(batch, values, strict=True))
                for values in zip(*batch.values(), strict=True)
            ]
            encoded = [encode(row) for row in rows]
            return {
                "input_ids": [ids for ids, _ in encoded],
                "labels": [labels for _, labels in encoded],
            }

        def run(split: Dataset, name: str) -> Dataset:
            features = cache.map(
                split, tokenize, name, batched=True, remove_columns=split.column_names
            )
            if self.settings.packing:
                features = cache.map(
                    features, lambda b: pack(b, max_length), f"{name}-packed", batched=True
                )
            return features

        train_features = run(train, "train")
        return Prepared(
            train=train_features,
            eval=run(eval, "eval") if eval is not None else None,
            collator=CausalCollator(tokenizer.pad_token_id, pad_multiple()),
            train_lengths=token_lengths(train_features),
        )

    def loss_function(self) -> Callable[..., torch.Tensor]:
        return losses.shifted_token_cross_entropy

    def derived_metrics(self, metrics: dict[str, float], prefix: str) -> dict[str, float]:
        return perplexity(metrics, prefix)


class SampleEncoder:
    """One dataset row -> (input_ids, labels), labels masked on the prompt."""

    def __init__(
        self, tokenizer: Any, format: str, columns: dict[str, str | None], max_length: int
    ) -> None:
        self.tokenizer = tokenizer
        self.format = format
        self.columns = columns
        self.max_length = max_length

    def __call__(self, row: dict[str, Any]) -> tuple[list[int], list[int]]:
        prompt, completion, templated = self.split(row)
        if prompt is None:
            ids = self.ids(completion, special=True)
            ids = self.with_eos(ids)[: self.max_length]
            return ids, list(ids)
        prompt_ids = self.ids(prompt, special=not templated)
        full_ids = self.ids(prompt + completion, special=not templated)
        if not templated:
            full_ids = self.with_eos(full_ids)
        # The prompt's tokens are a prefix of the full text's, up to a merge at the boundary.
        cut = common_prefix(prompt_ids, full_ids)
        labels = [IGNORE_INDEX] * cut + full_ids[cut:]
        return full_ids[: self.max_length], labels[: self.max_length]

    def split(self, row: dict[str, Any]) -> tuple[str | None, str, bool]:
        """(prompt or None, completion, whether a chat template produced them)."""

        def value(role: str) -> Any:
            column = self.columns.get(role)
            return row[column] if column is not None else None

        if self.format == "text":
            return None, str(value("text")), False
        if self.format == "prompt_completion":
            return str(value("prompt")), str(value("completion")), False
        if self.format == "instruction":
            extra = str(value("input") or "").strip()
            prompt = ALPACA_PROMPT.format(
                with_input=", paired with an input that provides further context" if extra else "",
                instruction=str(value("instruction")).strip(),
                input_block=f"### Input:\n{extra}\n\n" if extra else "",
            )
            return prompt, str(value("output")), False
        return self.chat(value("messages"))

    def chat(self, messages: Any) -> tuple[str | None, str, bool]:
        messages = [dict(m) for m in messages]
        if not messages or any("role" not in m or "content" not in m for m in messages):
            raise TrainerError(
                f"column {self.columns['messages']!r}: each value must be a list of {{'role', 'content'}} "
                f"messages; got {messages!r}"
            )
        last_is_answer = messages[-1]["role"] == "assistant"
        if getattr(self.tokenizer, "chat_template", None):
            full = self.tokenizer.apply_chat_template(messages, tokenize=False)
            if not last_is_answer:
                return None, full, True
            prompt = self.tokenizer.apply_chat_template(
                messages[:-1], tokenize=False, add_generation_prompt=True
            )
            if not full.startswith(prompt):
                return None, full, True
            return prompt, full[len(prompt) :], True
        lines = [f"{m['role']}: {m['content']}\n" for m in messages]
        if not last_is_answer:
            return None, "".join(lines), False
        return "".join(lines[:-1]) + "assistant: ", f"{messages[-1]['content']}\n", False

    def ids(self, text: str, special: bool) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=special)["input_ids"])

    def with_eos(self, ids: list[int]) -> list[int]:
        eos = self.tokenizer.eos_token_id
        return [*ids, eos] if eos is not None and (not ids or ids[-1] != eos) else ids


def common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def pack(batch: dict[str, list[list[int]]], block: int) -> dict[str, list[list[int]]]:
    """Concatenates the samples of a batch and cuts them into `block`-token sequences."""
    ids = [t for row in batch["input_ids"] for t in row]
    labels = [t for row in batch["labels"] for t in row]
    return {
        "input_ids": [ids[i : i + block] for i in range(0, len(ids), block)],
        "labels": [labels[i : i + block] for i in range(0, len(labels), block)],
    }


class CausalCollator:
    """Pads input_ids (pad token), attention_mask (0) and labels (-100) to the longest sample,
    rounded up to `multiple` (see `pad_multiple`)."""

    def __init__(self, pad_token_id: int, multiple: int | None = None) -> None:
        self.pad_token_id = pad_token_id
        self.multiple = multiple or 1

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        longest = max(len(f["input_ids"]) for f in features)
        length = -(-longest // self.multiple) * self.multiple
        input_ids, attention, labels = [], [], []
        for f in features:
            pad = length - len(f["input_ids"])
            input_ids.append(list(f["input_ids"]) + [self.pad_token_id] * pad)
            attention.append([1] * len(f["input_ids"]) + [0] * pad)
            labels.append(list(f["labels"]) + [IGNORE_INDEX] * pad)
        return {
            "input_ids": torch.tensor(input_ids, dtype=torch.long),
            "attention_mask": torch.tensor(attention, dtype=torch.long),
            "labels": torch.tensor(labels, dtype=torch.long),
        }


def perplexity(metrics: dict[str, float], prefix: str) -> dict[str, float]:
    """exp(loss) for the train or eval loss found in `metrics`."""
    loss = metrics.get(f"{prefix}_loss")
    if loss is None:
        return {}
    return {f"{prefix}_perplexity": math.exp(min(loss, 50.0))}
