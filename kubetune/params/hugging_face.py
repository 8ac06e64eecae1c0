"""Parameter classes for Hugging Face models, datasets and trainer settings (the seed's API)."""

from __future__ import annotations

import typing
from dataclasses import dataclass, field
from typing import Any, Union

import transformers
from peft import LoraConfig
from transformers import (
    AutoModelForCausalLM,
    AutoModelForImageClassification,
    AutoModelForMaskedLM,
    AutoModelForQuestionAnswering,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    TrainingArguments,
)

from kubetune.contract.causal_lm import DataFormat, LossOn, TrainingMethod, method_of
from kubetune.contract.problems import Problems
from kubetune.contract.secrets import TRAINING_ARGUMENT_SECRETS
from kubetune.contract.spec import LABELLED_TYPES, TransformerType
from kubetune.contract.uris import model_uri_problem, parse_model_uri
from kubetune.params import validation

TRANSFORMER_TYPES = Union[  # noqa: UP007 -- the seed's public name is this Union of the six classes
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    AutoModelForQuestionAnswering,
    AutoModelForCausalLM,
    AutoModelForMaskedLM,
    AutoModelForImageClassification,
]

TRANSFORMER_TYPE_CLASSES: dict[TransformerType, type] = {
    TransformerType(cls.__name__): cls for cls in typing.get_args(TRANSFORMER_TYPES)
}


def transformer_type_of(value: Any) -> TransformerType | None:
    """The TransformerType of a transformer type given as class or name; None when it is not
    one of the six."""
    name = value if isinstance(value, str) else getattr(value, "__name__", None)
    try:
        return TransformerType(str(name))
    except ValueError:
        return None


@dataclass
class HuggingFaceModelParams:
    """A pre-trained model to fine-tune: where it comes from and which task head to load.

    `model_uri`: `hf://org/name[@revision]`, a bare `org/name`, `/abs/path`, `file:///abs/path`
    or `s3://bucket/prefix`. `transformer_type`: one of `TRANSFORMER_TYPES`, as class or name.
    `access_token`: Hub token for private models (travels as a secret, never in the job spec).
    `num_labels`: output labels of a classification head (inferred from the data when None).
    `revision`: Hub branch, tag or commit (or `@revision` in the URI).
    """

    model_uri: str
    transformer_type: Any
    access_token: str | None = None
    num_labels: int | None = None
    revision: str | None = None

    def __post_init__(self) -> None:
        problems = Problems("HuggingFaceModelParams")
        problems.add(model_uri_problem("model_uri", self.model_uri))
        name = transformer_type_of(self.transformer_type)
        if name is None:
            problems.add(
                f"transformer_type={self.transformer_type!r}: must be one of "
                f"{', '.join(TRANSFORMER_TYPE_CLASSES)} (the class or its name)"
            )
        else:
            self.transformer_type = TRANSFORMER_TYPE_CLASSES[name]
        if self.num_labels is not None:
            problem = validation.int_in_range(
                "num_labels", self.num_labels, 1, validation.MAX_LABELS
            )
            if problem:
                problems.add(f"{problem} or None")
            elif name is not None and name not in LABELLED_TYPES:
                problems.add(
                    f"num_labels={self.num_labels!r}: {name} has no labels; num_labels is allowed only with "
                    f"{', '.join(t for t in TransformerType if t in LABELLED_TYPES)}"
                )
        problems.add(validation.secret_str("access_token", self.access_token))
        problems.add(validation.optional_str("revision", self.revision))
        if (
            self.revision is not None
            and not model_uri_problem("model_uri", self.model_uri)
            and parse_model_uri(self.model_uri).revision not in (None, self.revision)
        ):
            problems.add(
                f"revision={self.revision!r}: conflicts with the revision in model_uri={self.model_uri!r}; give one"
            )
        problems.raise_if_any()

    @property
    def transformer_type_name(self) -> TransformerType:
        """The class name of `transformer_type`, e.g. 'AutoModelForSequenceClassification'."""
        return TransformerType(self.transformer_type.__name__)

    def __repr__(self) -> str:
        token = "'***'" if self.access_token else "None"
        return (
            f"HuggingFaceModelParams(model_uri={self.model_uri!r}, transformer_type={self.transformer_type_name}, "
            f"access_token={token}, num_labels={self.num_labels!r}, revision={self.revision!r})"
        )


@dataclass
class HuggingFaceDatasetParams:
    """A dataset on the Hugging Face Hub.

    `repo_id`: dataset repository (e.g. 'imdb', 'org/name'). `split`: split expression to train on
    ('train', 'train[:3000]', 'train[10%:]', 'train+test'; all of 'train' when None).
    `access_token`: Hub token for private datasets (a secret). `name`: dataset configuration.
    `revision`: branch, tag or commit. `eval_split`: split expression to evaluate on.
    """

    repo_id: str
    access_token: str | None = None
    split: str | None = None
    name: str | None = None
    revision: str | None = None
    eval_split: str | None = None

    def __post_init__(self) -> None:
        problems = Problems("HuggingFaceDatasetParams")
        problems.add(validation.non_empty_str("repo_id", self.repo_id))
        problems.add(validation.secret_str("access_token", self.access_token))
        problems.add(validation.split_expression("split", self.split))
        problems.add(validation.split_expression("eval_split", self.eval_split))
        problems.add(validation.optional_str("name", self.name))
        problems.add(validation.optional_str("revision", self.revision))
        problems.raise_if_any()

    def __repr__(self) -> str:
        token = "'***'" if self.access_token else "None"
        return (
            f"HuggingFaceDatasetParams(repo_id={self.repo_id!r}, access_token={token}, split={self.split!r}, "
            f"name={self.name!r}, revision={self.revision!r}, eval_split={self.eval_split!r})"
        )


@dataclass
class HuggingFaceTrainerParams:
    """How to train: `TrainingArguments`, and a `LoraConfig` (None trains all parameters).

    Only the `TrainingArguments` fields you set travel to the workers. A causal LM may instead be
    trained with a TRL method, chosen by the config's type: `trl.SFTConfig` (supervised, with
    TRL's completion-only and assistant-only loss and packing), `trl.DPOConfig`,
    `trl.experimental.orpo.ORPOConfig` or `trl.KTOConfig` (preference tuning); TRL's own
    options (its `max_length`, `packing`, loss masks) then replace kubetune's `max_length`,
    `packing` and `loss_on`. See docs/data-formats.md.

    Extras: `max_length` truncates inputs (None: the model's limit, at most 512 for encoders and
    1024 for decoders); `columns` names dataset columns when detection by convention is not
    enough (e.g. {'text': 'review', 'label': 'stars'}); `packing` packs causal-LM samples into
    full sequences; `merge_adapter` also saves a merged full model after LoRA training;
    `evaluate_before_training` evaluates the untrained model first (metrics prefixed `eval_before_`);
    `length_grouping` puts samples of similar length in each training step (steps shuffled,
    the longest first), so batches carry little padding: False keeps the order of
    `TrainingArguments.train_sampling_strategy` (whose default is a plain shuffle), and any
    other strategy set there wins (TRL methods keep TRL's order).

    Causal LMs: `data_format` names the samples' format ('text', 'prompt_completion', 'alpaca',
    'sharegpt', 'messages'; None: detected from the columns); `chat_template` is a Jinja chat
    template used instead of the tokenizer's (and saved with the model); `loss_on` chooses
    which tokens the loss covers: 'completion' (the answer; a chat's last assistant turn),
    'assistant' (every assistant turn of a chat) or 'all' (None: 'all' for plain text,
    'assistant' otherwise).
    """

    training_parameters: TrainingArguments
    lora_config: LoraConfig | None = field(default_factory=LoraConfig)
    max_length: int | None = None
    columns: dict[str, str] | None = None
    packing: bool = False
    merge_adapter: bool = False
    evaluate_before_training: bool = False
    length_grouping: bool = True
    data_format: str | None = None
    chat_template: str | None = None
    loss_on: str | None = None

    def __post_init__(self) -> None:
        problems = Problems("HuggingFaceTrainerParams")
        arguments = self.training_parameters
        if type(arguments) is not transformers.TrainingArguments and method_of(arguments) is None:
            configs = ", ".join(m.classes.config_path for m in TrainingMethod)
            problems.add(
                f"training_parameters={type(arguments).__name__}: must be a "
                f"transformers.TrainingArguments or a TRL config ({configs})"
            )
        else:
            problems.extend(training_arguments_problems(arguments))
        if self.lora_config is not None and not isinstance(self.lora_config, LoraConfig):
            problems.add(
                f"lora_config={type(self.lora_config).__name__}: must be a peft.LoraConfig, or None for "
                "full fine-tuning"
            )
        if self.max_length is not None:
            problems.add(
                validation.int_in_range("max_length", self.max_length, 1, validation.MAX_LENGTH)
            )
        if self.columns is not None and (
            not isinstance(self.columns, dict)
            or not all(
                isinstance(k, str) and isinstance(v, str) and v for k, v in self.columns.items()
            )
        ):
            problems.add(
                f"columns={self.columns!r}: must map roles to column names, e.g. {{'text': 'review'}}"
            )
        for flag in ("packing", "merge_adapter", "evaluate_before_training", "length_grouping"):
            if not isinstance(getattr(self, flag), bool):
                problems.add(f"{flag}={getattr(self, flag)!r}: must be True or False")
        if self.merge_adapter is True and self.lora_config is None:
            problems.add(
                "merge_adapter=True: needs a lora_config (full fine-tuning already saves a full model)"
            )
        problems.extend(self._causal_lm_problems())
        problems.raise_if_any()

    @property
    def method(self) -> TrainingMethod | None:
        """The TRL method that `training_parameters` configures (None: TrainingArguments)."""
        return method_of(self.training_parameters)

    def _causal_lm_problems(self) -> list[str]:
        """data_format, loss_on and chat_template checked, and turned into their enums."""
        messages = [validation.optional_str("chat_template", self.chat_template)]
        for name, enum in (("data_format", DataFormat), ("loss_on", LossOn)):
            value = getattr(self, name)
            problem = validation.one_of(name, value, [str(m) for m in enum])
            messages.append(problem)
            if value is not None and problem is None:
                setattr(self, name, enum(value))
        if self.data_format == DataFormat.TEXT and self.loss_on in (
            LossOn.COMPLETION,
            LossOn.ASSISTANT,
        ):
            messages.append(
                f"loss_on={str(self.loss_on)!r}: plain text (data_format='text') has no answer to "
                "train on alone; allowed: 'all' or None"
            )
        messages.extend(method_problems(self))
        return [m for m in messages if m]


def training_arguments_problems(arguments: TrainingArguments) -> list[str]:
    """What kubetune cannot run in a TrainingArguments: an output_dir leading out of the job's
    outputs folder, a credential that is not a string, a number or flag of the wrong type."""
    where = "training_parameters"
    messages = [validation.output_dir(f"{where}.output_dir", arguments.output_dir)]
    for name in TRAINING_ARGUMENT_SECRETS:
        messages.append(validation.secret_str(f"{where}.{name}", getattr(arguments, name, None)))
    cls = type(arguments)
    # A search space (katib.search.*) stands where a value goes: KatibClient.tune() checks it.
    values = {
        name: getattr(arguments, name)
        for name in validation.scalar_fields(cls)
        if not validation.is_search_space(getattr(arguments, name))
    }
    _, typed = validation.typed_fields(cls, values, where, numbers_from_text=False)
    return [m for m in [*messages, *typed] if m]


def method_problems(params: HuggingFaceTrainerParams) -> list[str]:
    """kubetune's extras that a TRL method replaces with options of its own config: each is
    named with the option to use instead."""
    method = params.method
    if method is None:
        return []
    config = method.classes.config
    messages = []
    if params.packing is True:
        messages.append(
            "packing=True: with SFTConfig, set training_parameters.packing=True (TRL packs "
            "samples, each kept apart)"
            if method is TrainingMethod.SFT
            else f"packing=True: {config} does not pack samples; allowed: False"
        )
    if params.max_length is not None:
        messages.append(
            f"max_length={params.max_length!r}: with {config}, set training_parameters.max_length "
            "(TRL truncates to it); allowed here: None"
        )
    if params.loss_on is not None:
        messages.append(
            f"loss_on={str(params.loss_on)!r}: with SFTConfig, TRL's options choose the tokens: "
            "training_parameters.completion_only_loss, assistant_only_loss; allowed here: None"
            if method is TrainingMethod.SFT
            else f"loss_on={str(params.loss_on)!r}: {config} compares whole answers; allowed: None"
        )
    if params.data_format is not None and method.is_preference:
        messages.append(
            f"data_format={str(params.data_format)!r}: {config} reads preference data (prompt, "
            "chosen, rejected; KTO also prompt, completion, label); allowed: None"
        )
    return messages
