"""What a causal-LM job can ask for beyond `TrainingArguments`: a training method of TRL, the
format of its data, and which tokens the loss covers.

The method is the type of `HuggingFaceTrainerParams.training_parameters` (job files: the
`method:` key); a job spec records its name, and the runtime rebuilds the config of that class
from the recorded fields. The classes are named here, as text, so that the client and the
runtime agree on them without this package importing TRL.
"""

from __future__ import annotations

import importlib
import os
import sys
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class TrainingMethod(StrEnum):
    """A training method of TRL, by the name job files give it (`method: dpo`)."""

    SFT = "sft"
    DPO = "dpo"
    ORPO = "orpo"
    KTO = "kto"

    @property
    def classes(self) -> MethodClasses:
        """Where TRL keeps this method's config and trainer."""
        return METHOD_CLASSES[self]

    @property
    def is_preference(self) -> bool:
        """Whether it learns from preferences (chosen/rejected answers, or labelled ones)."""
        return self is not TrainingMethod.SFT


@dataclass(frozen=True)
class MethodClasses:
    """A method's config and trainer classes: `module`.`config` and `module`.`trainer`."""

    module: str
    config: str
    trainer: str

    @property
    def config_path(self) -> str:
        """The config class as users import it, e.g. 'trl.DPOConfig'."""
        return f"{self.module}.{self.config}"


METHOD_CLASSES = {
    TrainingMethod.SFT: MethodClasses("trl", "SFTConfig", "SFTTrainer"),
    TrainingMethod.DPO: MethodClasses("trl", "DPOConfig", "DPOTrainer"),
    TrainingMethod.ORPO: MethodClasses("trl.experimental.orpo", "ORPOConfig", "ORPOTrainer"),
    TrainingMethod.KTO: MethodClasses("trl", "KTOConfig", "KTOTrainer"),
}

# The defaults a TRL config is recorded against and rebuilt on. TRL turns bf16 on unless fp16 is
# set, which fails (or, with use_cpu, silently autocasts) on a machine without a GPU: a job
# trains in bf16 only when bf16=True was given.
TRL_RECORD_DEFAULTS: dict[str, Any] = {"bf16": False}


def record_defaults(method: TrainingMethod | None) -> dict[str, Any]:
    """The field values a method's config is recorded against and rebuilt on, beyond its own
    defaults (none for `TrainingArguments`)."""
    return dict(TRL_RECORD_DEFAULTS) if method is not None else {}


def config_class(method: TrainingMethod | None) -> type:
    """The config class of a method (`transformers.TrainingArguments` for None), imported."""
    if method is None:
        from transformers import TrainingArguments

        return TrainingArguments
    return _class_of(method, method.classes.config)


def trainer_class(method: TrainingMethod) -> type:
    """The TRL trainer class of a method, imported."""
    return _class_of(method, method.classes.trainer)


def _class_of(method: TrainingMethod, name: str) -> type:
    if method is TrainingMethod.ORPO:
        # ORPO lives in trl.experimental, which warns at import; that is said in the docs once.
        os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    cls: type = getattr(importlib.import_module(method.classes.module), name)
    return cls


def method_of(arguments: Any) -> TrainingMethod | None:
    """The TRL method whose config `arguments` is, or None (a plain `TrainingArguments` or
    anything else). TRL is not imported: a config of a module nobody imported cannot exist."""
    for method, classes in METHOD_CLASSES.items():
        module = sys.modules.get(classes.module)
        cls = getattr(module, classes.config, None) if module is not None else None
        if isinstance(cls, type) and isinstance(arguments, cls):
            return method
    return None


class DataFormat(StrEnum):
    """How a causal LM's samples are written (see docs/data-formats.md)."""

    TEXT = "text"  # text: trained on as a whole
    PROMPT_COMPLETION = "prompt_completion"  # prompt, completion
    ALPACA = "alpaca"  # instruction, optional input, output
    SHAREGPT = "sharegpt"  # conversations: [{from: human|gpt|system, value}]
    MESSAGES = "messages"  # messages: [{role: user|assistant|system, content}] (OpenAI style)


class LossOn(StrEnum):
    """Which tokens of a causal-LM sample the loss covers."""

    COMPLETION = (
        "completion"  # the answer: the completion, the output, a chat's last assistant turn
    )
    ASSISTANT = "assistant"  # every assistant turn of a chat (the answer in other formats)
    ALL = "all"  # every token, prompts included
