"""Causal language modelling: plain text, prompt/completion, Alpaca instructions, ShareGPT and
OpenAI-style chats (see `instruction_formats`), trained by the Trainer or by a TRL method.

kubetune's own training tokenises the samples and masks the loss as `loss_on` asks; `packing`
puts whole samples together into sequences of up to `max_length` tokens, each sample seeing
only itself. A TRL method gets the samples in TRL's columns (SFT: text, prompt/completion or
messages; DPO and ORPO: prompt, chosen, rejected; KTO: prompt, completion, label, or the DPO
columns) and tokenises, masks and packs them itself.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from peft import TaskType

from kubetune.contract.causal_lm import DataFormat, LossOn, TrainingMethod
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
from kubetune.runtime.tasks.instruction_formats import (
    FORMAT_ROLES,
    chat_messages,
    default_loss_on,
    encode,
    render,
    sample_of,
    trl_row,
)

if TYPE_CHECKING:
    from pathlib import Path

    from datasets import Dataset
    from transformers import PreTrainedModel

# The columns of preference data, by the roles each method needs (the prompt is optional).
PREFERENCE_ROLES: dict[TrainingMethod, tuple[tuple[str, ...], ...]] = {
    TrainingMethod.DPO: (("chosen", "rejected"),),
    TrainingMethod.ORPO: (("chosen", "rejected"),),
    TrainingMethod.KTO: (("completion", "label"), ("chosen", "rejected")),
}


class CausalLM(Task):
    """Causal language modelling (`AutoModelForCausalLM`), by the Trainer or a TRL method."""

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
        "chosen": ("chosen",),
        "rejected": ("rejected",),
        "label": ("label",),
    }
    format: DataFormat | None = None
    # The roles whose columns a TRL preference method reads (prompt first when there is one).
    preference_roles: tuple[str, ...] = ()

    def resolve_columns(self, dataset_columns: list[str]) -> dict[str, str | None]:
        super().resolve_columns(dataset_columns)
        method = self.settings.method
        if method is not None and method.is_preference:
            self.preference_roles = self._preference_roles(method, dataset_columns)
        else:
            self.format = self._format(dataset_columns)
            loss_on = self.settings.loss_on
            if self.format is DataFormat.TEXT and loss_on not in (None, LossOn.ALL):
                raise TrainerError(
                    f"loss_on={str(loss_on)!r}: the data is plain text (column "
                    f"{self.columns.get('text')!r}), which has no answer to train on alone; use "
                    "loss_on='all', or data with answers (see docs/data-formats.md)"
                )
        return self.columns

    def _format(self, dataset_columns: list[str]) -> DataFormat:
        named = self.settings.data_format
        if named is not None:
            missing = [r for r in FORMAT_ROLES[named] if not self.columns.get(r)]
            if missing:
                raise TrainerError(
                    f"data_format={str(named)!r}: needs the {', '.join(map(repr, missing))} "
                    f"column(s) ({_conventions(missing, self.column_conventions)}); the dataset "
                    f"has columns {dataset_columns}; name them with "
                    f"HuggingFaceTrainerParams(columns={{{missing[0]!r}: '<column>'}})"
                )
            return named
        explicit = set(self.settings.columns)
        found = [f for f, roles in FORMAT_ROLES.items() if all(self.columns.get(r) for r in roles)]
        chosen = [f for f in found if explicit & set(FORMAT_ROLES[f])] or found
        if not chosen:
            formats = "; ".join(f"{f}: {list(roles)}" for f, roles in FORMAT_ROLES.items())
            raise TrainerError(
                f"{self.transformer_type}: cannot find the columns of any data format ({formats}); "
                f"the dataset has columns {dataset_columns}; name them with "
                "HuggingFaceTrainerParams(columns={'text': '<column>'})"
            )
        return chosen[0]

    def _preference_roles(
        self, method: TrainingMethod, dataset_columns: list[str]
    ) -> tuple[str, ...]:
        for roles in PREFERENCE_ROLES[method]:
            if all(self.columns.get(r) for r in roles):
                return ("prompt", *roles) if self.columns.get("prompt") else roles
        wanted = " or ".join(
            "[" + ", ".join(("prompt?", *roles)) + "]" for roles in PREFERENCE_ROLES[method]
        )
        raise TrainerError(
            f"{method.classes.config}: preference data needs the columns {wanted} (prompt is "
            f"optional); the dataset has columns {dataset_columns}; name them with "
            "HuggingFaceTrainerParams(columns={'chosen': '<column>', ...})"
        )

    def load_processor(self, model_dir: Path) -> Any:
        """The tokenizer saved with the model, with the job's chat template when it gives one."""
        tokenizer = super().load_processor(model_dir)
        if self.settings.chat_template:
            tokenizer.chat_template = self.settings.chat_template
        return tokenizer

    def prepare(
        self,
        train: Dataset,
        eval: Dataset | None,
        processor: Any,
        model: PreTrainedModel,
        cache: MapCache,
    ) -> Prepared:
        tokenizer = processor
        complete_special_tokens(tokenizer, model)
        if self.settings.method is not None:
            return self._prepare_for_trl(train, eval, tokenizer, cache)
        if self.settings.packing and not takes_position_ids(model):
            raise TrainerError(
                f"packing=True: {type(model).__name__} takes no position_ids, without which "
                "packed samples would attend to each other; set packing=False"
            )
        assert self.format is not None
        max_length = model_max_length(tokenizer, model, "decoder", self.settings.max_length)
        encoder = SampleEncoder(
            tokenizer,
            self.format,
            self.columns,
            max_length,
            loss_on=self.settings.loss_on,
            named=self.settings.data_format is not None,
        )

        def tokenize(batch: dict[str, list[Any]]) -> dict[str, Any]:
            encoded = [encoder(row) for row in rows_of(batch)]
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

    def _prepare_for_trl(
        self, train: Dataset, eval: Dataset | None, tokenizer: Any, cache: MapCache
    ) -> Prepared:
        """The splits in TRL's columns; TRL tokenises them when its trainer is made."""
        row_of = self.trl_row

        def convert(batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
            converted = [row_of(row) for row in rows_of(batch)]
            return {key: [row[key] for row in converted] for key in converted[0]}

        if len(train) and not getattr(tokenizer, "chat_template", None):
            chats = [key for key, value in row_of(train[0]).items() if isinstance(value, list)]
            if chats:
                raise TrainerError(
                    f"method {self.settings.method}: chats ({', '.join(chats)}) need a chat "
                    "template, and the tokenizer has none; give one: "
                    "HuggingFaceTrainerParams(chat_template=...)"
                )
        train_rows, eval_rows = cache.map_splits(train, eval, convert)
        return Prepared(train=train_rows, eval=eval_rows, collator=None)

    def trl_row(self, row: dict[str, Any]) -> dict[str, Any]:
        """A dataset row in the columns of the job's TRL method."""
        if not self.preference_roles:
            assert self.format is not None
            named = self.settings.data_format is not None
            return trl_row(sample_of(row, self.format, self.columns, named))
        converted: dict[str, Any] = {}
        for role in self.preference_roles:
            column = self.column(role)
            value = row[column]
            if role == "label":
                value = desirable(value, column)
            elif isinstance(value, list | tuple):
                value = chat_messages(value, column)
            converted[role] = value
        return converted

    def loss_function(self) -> Callable[..., torch.Tensor]:
        return losses.shifted_token_cross_entropy

    def derived_metrics(self, metrics: dict[str, float], prefix: str) -> dict[str, float]:
        method = self.settings.method
        if method is not None and method.is_preference:  # its loss is no language model's
            return {}
        return perplexity(metrics, prefix)


def complete_special_tokens(tokenizer: Any, model: Any) -> None:
    """Gives the tokenizer the model's end-of-sequence token when it has none (a BERT tokenizer
    on a decoder), so samples end with it, and a padding token (its end-of-sequence or unknown
    token) when it has none."""
    eos = getattr(model.config, "eos_token_id", None)
    eos = eos[0] if isinstance(eos, list) and eos else eos
    if tokenizer.eos_token is None and isinstance(eos, int):
        tokenizer.eos_token = tokenizer.convert_ids_to_tokens(eos)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = (
            tokenizer.eos_token if tokenizer.eos_token is not None else tokenizer.unk_token
        )


def rows_of(batch: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """The rows of a batch given as columns."""
    return [dict(zip(batch, values, strict=True)) for values in zip(*batch.values(), strict=True)]


def desirable(value: Any, column: str) -> bool:
    """A KTO label: True (desirable) or False, also written 1 or 0.

    Raises:
        TrainerError: anything else.
    """
    if isinstance(value, bool) or value in (0, 1):
        return bool(value)
    raise TrainerError(
        f"column {column!r}: KTO labels must be true (a desirable completion) or false; got {value!r}"
    )


def _conventions(roles: list[str], conventions: Mapping[str, tuple[str, ...]]) -> str:
    return "; ".join(f"{r!r}: one of {list(conventions[r])}" for r in roles)


class SampleEncoder:
    """One dataset row -> (input_ids, labels), labels masked as `loss_on` asks (None: the
    format's default, see `instruction_formats.default_loss_on`)."""

    def __init__(
        self,
        tokenizer: Any,
        format: DataFormat,
        columns: dict[str, str | None],
        max_length: int,
        loss_on: LossOn | None = None,
        named: bool = False,
    ) -> None:
        self.tokenizer = tokenizer
        self.format = format
        self.columns = columns
        self.max_length = max_length
        self.loss_on = loss_on or default_loss_on(format)
        self.named = named

    def __call__(self, row: dict[str, Any]) -> tuple[list[int], list[int]]:
        sample = sample_of(row, self.format, self.columns, self.named)
        return encode(render(sample, self.tokenizer), self.tokenizer, self.loss_on, self.max_length)


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
