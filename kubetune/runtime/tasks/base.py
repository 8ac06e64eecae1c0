"""What every task module provides, and helpers shared by the text tasks."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from kubetune.contract.causal_lm import DataFormat, LossOn, TrainingMethod
from kubetune.contract.spec import TransformerType
from kubetune.runtime.errors import TrainerError

if TYPE_CHECKING:
    import torch
    from datasets import Dataset
    from peft import TaskType
    from transformers import EvalPrediction, PreTrainedModel

# Inputs are truncated to this when neither the user nor the model gives a limit.
DEFAULT_MAX_LENGTH = {"encoder": 512, "decoder": 1024}
IGNORE_INDEX = -100


def pad_multiple() -> int | None:
    """Batches are padded to the longest sample, rounded up to this (None: not rounded).

    Multiples of 8 feed GPU tensor cores; on a CPU the extra positions are only waste (about
    10% of the step time on short texts, measured with benchmarks/throughput.py).
    """
    import torch

    return 8 if torch.cuda.is_available() else None


@dataclass
class TaskSettings:
    """The task-related knobs from the job spec (spec.trainer and spec.model)."""

    columns: dict[str, str] = field(default_factory=dict)
    max_length: int | None = None
    packing: bool = False
    num_labels: int | None = None
    # Causal LMs (see TrainerSpec): the TRL method, the data's format, a chat template, the loss mask.
    method: TrainingMethod | None = None
    data_format: DataFormat | None = None
    chat_template: str | None = None
    loss_on: LossOn | None = None


@dataclass
class Prepared:
    """What a task hands to the Trainer after preprocessing."""

    train: Any
    eval: Any | None
    # None: the trainer's own (TRL's trainers collate what they prepared themselves).
    collator: Callable[[list[dict[str, Any]]], dict[str, Any]] | None
    compute_metrics: Callable[[EvalPrediction], dict[str, float]] | None = None
    # Reduces logits before they are gathered for metrics (e.g. argmax), to save memory.
    preprocess_logits_for_metrics: Callable[[Any, Any], Any] | None = None
    # Tokens of each train sample, padding excluded (None where tokens mean nothing, e.g. images).
    train_lengths: list[int] | None = None

    @property
    def train_tokens(self) -> int | None:
        """Tokens in one pass over the train split."""
        return sum(self.train_lengths) if self.train_lengths is not None else None


class Task:
    """One transformer type: its columns, model loading, preprocessing, collator and metrics.

    Subclasses set the class attributes and implement `resolve_columns`, `load_processor`,
    `model_kwargs` and `prepare`.
    """

    transformer_type: ClassVar[TransformerType]
    # The PEFT task type that makes the new head trainable (None: no new head to train).
    peft_task_type: ClassVar[TaskType | None] = None
    # Top-level modules to train fully under LoRA when PEFT has no task type for this task.
    head_modules: tuple[str, ...] = ()
    # True when the loss is a mean over tokens; it is then averaged over the tokens of the
    # whole global batch (across devices), so distributed runs report the single-process loss.
    token_level_loss: bool = False
    # True when eval needs only the loss (metrics derive from it, e.g. perplexity).
    prediction_loss_only: bool = False
    # Convention: the column names tried for each role, in order.
    column_conventions: ClassVar[Mapping[str, tuple[str, ...]]] = {}
    required_roles: tuple[str, ...] = ()

    def __init__(self, settings: TaskSettings) -> None:
        self.settings = settings
        self.columns: dict[str, str | None] = {}

    # --- columns ---------------------------------------------------------------------------

    def resolve_columns(self, dataset_columns: list[str]) -> dict[str, str | None]:
        """Maps each role to a dataset column: explicit `columns` first, then the conventions."""
        self.columns = resolve_columns(
            self.transformer_type,
            dataset_columns,
            self.settings.columns,
            self.column_conventions,
            self.required_roles,
        )
        return self.columns

    def column(self, role: str) -> str:
        """The dataset column of a role that was found (required, or checked by the caller)."""
        name = self.columns.get(role)
        if name is None:
            raise TrainerError(f"{self.transformer_type}: no column for {role!r}")
        return name

    # --- model ---------------------------------------------------------------------------

    def load_processor(self, model_dir: Path) -> Any:
        """The tokenizer (or image processor) saved with the model."""
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(model_dir)

    def model_kwargs(self, train: Dataset, eval: Dataset | None) -> dict[str, Any]:
        """Extra `from_pretrained` arguments (labels of a classification head)."""
        return {}

    def load_model(self, model_dir: Path, **kwargs: Any) -> PreTrainedModel:
        """The model of the task's transformer type from `model_dir`, with `kwargs` (e.g. the labels)."""
        import transformers

        auto_class = getattr(transformers, self.transformer_type)
        return auto_class.from_pretrained(model_dir, **kwargs)

    def prepare(
        self,
        train: Dataset,
        eval: Dataset | None,
        processor: Any,
        model: PreTrainedModel,
        cache: MapCache,
    ) -> Prepared:
        """The splits preprocessed for training (once per node, cached in `cache`), the collator, the metrics.

        Raises:
            TrainerError: the data cannot become this task's inputs (columns, labels, lengths).
        """
        raise NotImplementedError

    # --- loss ----------------------------------------------------------------------------

    def loss_function(self) -> Callable[..., torch.Tensor] | None:
        """A `compute_loss_func` for the Trainer (token-level tasks), or None for the model's loss."""
        return None

    def derived_metrics(self, metrics: dict[str, float], prefix: str) -> dict[str, float]:
        """Metrics computed from others after train/evaluate (e.g. perplexity from the loss)."""
        return {}


def resolve_columns(
    task: str,
    dataset_columns: list[str],
    explicit: Mapping[str, str],
    conventions: Mapping[str, tuple[str, ...]],
    required: tuple[str, ...],
) -> dict[str, str | None]:
    """Role -> column, checking explicit names exist and required roles are found."""
    unknown_roles = sorted(set(explicit) - set(conventions))
    if unknown_roles:
        raise TrainerError(
            f"columns: unknown role(s) {unknown_roles} for {task}; allowed roles: {sorted(conventions)}"
        )
    resolved: dict[str, str | None] = {}
    for role, candidates in conventions.items():
        if role in explicit:
            name = explicit[role]
            if name not in dataset_columns:
                raise TrainerError(
                    f"columns[{role!r}]={name!r}: no such column in the dataset; "
                    f"the dataset has columns {dataset_columns}"
                )
            resolved[role] = name
        else:
            resolved[role] = next((c for c in candidates if c in dataset_columns), None)
    missing = [r for r in required if resolved.get(r) is None]
    if missing:
        wanted = "; ".join(f"{r!r}: one of {list(conventions[r])}" for r in missing)
        raise TrainerError(
            f"{task}: cannot find the {', '.join(repr(r) for r in missing)} column ({wanted}); "
            f"the dataset has columns {dataset_columns}; name them with "
            f"HuggingFaceTrainerParams(columns={{{missing[0]!r}: '<column>'}})"
        )
    return resolved


def require_fast_tokenizer(processor: Any, task: str, why: str) -> None:
    """Raises TrainerError when the tokenizer is a slow one: `task` needs it `why`."""
    if not getattr(processor, "is_fast", True):
        raise TrainerError(f"{task} needs a fast tokenizer (tokenizer.json) {why}")


def model_max_length(processor: Any, model: PreTrainedModel, kind: str, asked: int | None) -> int:
    """The truncation length: the one asked for, else the model's limit capped by DEFAULT_MAX_LENGTH."""
    if asked is not None:
        return asked
    limits = [DEFAULT_MAX_LENGTH[kind]]
    positions = getattr(model.config, "max_position_embeddings", None)
    if isinstance(positions, int) and positions > 0:
        limits.append(positions)
    tokenizer_limit = getattr(processor, "model_max_length", None)
    if isinstance(tokenizer_limit, int) and 0 < tokenizer_limit < 1_000_000:
        limits.append(tokenizer_limit)
    return min(limits)


class MapCache:
    """Runs `Dataset.map` with cache files in a folder of our own (never in the dataset folder).

    The first process of each node computes, the others then load the same files: call
    `map` inside `TrainingArguments.main_process_first`.
    """

    def __init__(self, folder: Path | None, key: str) -> None:
        self.folder = folder
        self.key = key

    def map(
        self, dataset: Dataset, function: Callable[..., Any], step: str, **kwargs: Any
    ) -> Dataset:
        """`dataset.map(function, **kwargs)` with its cache file named after `step` in this cache's folder (in memory without one)."""
        if self.folder is None:
            return dataset.map(function, keep_in_memory=True, **kwargs)
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"{self.key}-{step}-{dataset._fingerprint}.arrow"
        return dataset.map(function, cache_file_name=str(self.folder / name), **kwargs)

    def map_splits(
        self, train: Dataset, eval: Dataset | None, function: Callable[..., Any]
    ) -> tuple[Dataset, Dataset | None]:
        """Both splits through batched `function`, keeping only the columns it returns."""

        def run(split: Dataset, name: str) -> Dataset:
            return self.map(split, function, name, batched=True, remove_columns=split.column_names)

        return run(train, "train"), run(eval, "eval") if eval is not None else None


def token_lengths(features: Dataset) -> list[int]:
    """The number of tokens in each sample's `input_ids` of a preprocessed split."""
    import pyarrow.compute as pc

    column = features.with_format("arrow")["input_ids"]
    return [int(n) for n in pc.list_value_length(column).to_pylist()]


def ensure_list(value: Any) -> list[Any]:
    """A list from a list, tuple or datasets Column."""
    return value if isinstance(value, list) else list(value)
