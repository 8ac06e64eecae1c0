"""Causal language modelling: plain text, prompt/completion, alpaca-style instructions, chat messages.

With a prompt/completion split (including instructions and chats) the loss covers only the
completion; `packing` puts whole samples together into sequences of up to `max_length` tokens,
each sample seeing only itself.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from peft import TaskType

from kubetune.contract.spec import TransformerType
from kubetune.runtime.errors import TrainerError
from kubetune.runtime.tasks import losses
from kubetune.runtime.tasks.base import (
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
    transformer_type = TransformerType.CAUSAL_LM
    peft_task_type = TaskType.CAUSAL_LM
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
        if self.settings.packing and not takes_position_ids(model):
            raise TrainerError(
                f"packing=True: {type(model).__name__} takes no position_ids, without which "
                "packed samples would attend to each other; set packing=False"
            )
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
        """(prompt or None, answer text, whether the chat template made them) of a list of chat messages.

        Raises:
            TrainerError: the value is not a list of {'role', 'content'} messages.
        """
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
        """The token ids of `text` (with the tokenizer's special tokens when `special`)."""
        return list(self.tokenizer(text, add_special_tokens=special)["input_ids"])

    def with_eos(self, ids: list[int]) -> list[int]:
        """`ids` ending in the tokenizer's end-of-sequence token (added when missing)."""
        eos = self.tokenizer.eos_token_id
        return [*ids, eos] if eos is not None and (not ids or ids[-1] != eos) else ids


def common_prefix(a: list[int], b: list[int]) -> int:
    """How many leading items `a` and `b` share."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def pack(batch: dict[str, list[list[int]]], block: int) -> dict[str, list[list[int]]]:
    """Puts whole samples one after another into sequences of at most `block` tokens.

    Packed samples must not see each other: each keeps its own positions (`position_ids`
    restart at 0), which is how transformers recognises packed sequences and keeps attention
    inside each one (the collator leaves out the attention mask); and a sample's first token
    is no target, as it would be predicted from the previous sample's last token.
    """
    packed: dict[str, list[list[int]]] = {"input_ids": [], "labels": [], "position_ids": []}
    current: dict[str, list[int]] = {key: [] for key in packed}
    for ids, labels in zip(batch["input_ids"], batch["labels"], strict=True):
        if not ids:
            continue
        if current["input_ids"] and len(current["input_ids"]) + len(ids) > block:
            for key, values in current.items():
                packed[key].append(values)
            current = {key: [] for key in packed}
        current["input_ids"] += ids
        current["labels"] += [IGNORE_INDEX, *labels[1:]]
        current["position_ids"] += range(len(ids))
    if current["input_ids"]:
        for key, values in current.items():
            packed[key].append(values)
    return packed


def takes_position_ids(model: Any) -> bool:
    """Whether the model (under a PEFT wrapper, if any) accepts `position_ids`."""
    import inspect

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "position_ids" in inspect.signature(base.forward).parameters


class CausalCollator:
    """Pads input_ids (pad token), attention_mask (0) and labels (-100) to the longest sample,
    rounded up to `multiple` (see `pad_multiple`).

    Packed samples (with `position_ids`) get no attention mask: transformers then keeps
    attention inside each sample; the padding becomes one more sample of its own.
    """

    def __init__(self, pad_token_id: int, multiple: int | None = None) -> None:
        self.pad_token_id = pad_token_id
        self.multiple = multiple or 1

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        longest = max(len(f["input_ids"]) for f in features)
        length = -(-longest // self.multiple) * self.multiple
        packed = "position_ids" in features[0]
        input_ids, labels, attention, positions = [], [], [], []
        for f in features:
            pad = length - len(f["input_ids"])
            input_ids.append(list(f["input_ids"]) + [self.pad_token_id] * pad)
            labels.append(list(f["labels"]) + [IGNORE_INDEX] * pad)
            if packed:
                positions.append(list(f["position_ids"]) + list(range(pad)))
            else:
                attention.append([1] * len(f["input_ids"]) + [0] * pad)
        batch = {
            "input_ids": torch.tensor(input_ids, dtype=torch.long),
            "labels": torch.tensor(labels, dtype=torch.long),
        }
        if packed:
            batch["position_ids"] = torch.tensor(positions, dtype=torch.long)
        else:
            batch["attention_mask"] = torch.tensor(attention, dtype=torch.long)
        return batch


def perplexity(metrics: dict[str, float], prefix: str) -> dict[str, float]:
    """exp(loss) for the train or eval loss found in `metrics`."""
    loss = metrics.get(f"{prefix}_loss")
    if loss is None:
        return {}
    return {f"{prefix}_perplexity": math.exp(min(loss, 50.0))}
