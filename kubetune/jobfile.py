"""Job YAML files: one fine-tuning job as `TrainingClient.train()`'s keyword arguments.

```yaml
name: fine-tune-bert
num_workers: 2
resources_per_worker: {cpu: 1, memory: 4G}
model_provider_parameters: {model_uri: ./models/bert, transformer_type: AutoModelForSequenceClassification}
dataset_provider_parameters: {local: {path: data/train.csv}}      # or hf: {...} or s3: {...}
trainer_parameters:
  training_parameters: {output_dir: out, num_train_epochs: 1}     # TrainingArguments fields
  lora_config: {r: 8, lora_alpha: 8}                              # LoraConfig fields; null: full fine-tuning
```

Top-level keys are `train()`'s arguments; `transformer_type` is the class name; relative paths
in `local: {path: ...}` and a `model_uri` starting with ./ or ../ are relative to the YAML file's
folder. Every problem in the file is reported at once, each with its key path.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

PARAMS_KEYS = ("model_provider_parameters", "dataset_provider_parameters", "trainer_parameters")
PLAIN_KEYS = (
    "name",
    "namespace",
    "num_workers",
    "num_procs_per_worker",
    "resources_per_worker",
    "storage_config",
    "init_env_vars",
    "env_vars",
    "labels",
    "annotations",
    "queue_name",
    "max_restarts",
)
TOP_LEVEL_KEYS = (*PLAIN_KEYS, *PARAMS_KEYS)
REQUIRED_KEYS = ("name", *PARAMS_KEYS)
DATASET_KINDS = ("hf", "s3", "local")


class JobFileError(ValueError):
    """A job file that cannot become a job; the message lists every problem with its key path."""


def load_job_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The `train()` keyword arguments that the job YAML at `path` describes.

    Raises JobFileError listing everything wrong (YAML syntax, unknown or missing keys, bad
    values), each with its key path.
    """
    path = Path(path)
    try:
        with path.open() as f:
            data = yaml.safe_load(f)
    except OSError as e:
        raise JobFileError(f"{path}: cannot read the job file: {e.strerror or e}") from None
    except yaml.YAMLError as e:
        raise JobFileError(f"{path}: not valid YAML: {e}") from None
    return job_kwargs(data, base_dir=path.resolve().parent, source=str(path))


def job_kwargs(data: Any, base_dir: Path, source: str = "job file") -> dict[str, Any]:
    """`train()` keyword arguments from parsed job YAML; relative paths resolve against `base_dir`."""
    problems: list[str] = []
    if not isinstance(data, dict):
        raise JobFileError(
            f"{source}: the job file must be a mapping of train() arguments "
            f"({', '.join(TOP_LEVEL_KEYS)}), not {type(data).__name__}"
        )
    for key in data:
        if key not in TOP_LEVEL_KEYS:
            problems.append(_unknown(str(key), key, TOP_LEVEL_KEYS))
    for key in REQUIRED_KEYS:
        if key not in data:
            problems.append(f"{key}: missing (required)")

    kwargs: dict[str, Any] = {k: data[k] for k in PLAIN_KEYS if k in data}
    builders: dict[str, Callable[[Any, Path, list[str]], Any]] = {
        "model_provider_parameters": _model_params,
        "dataset_provider_parameters": _dataset_params,
        "trainer_parameters": _trainer_params,
    }
    for key, build in builders.items():
        if key in data:
            kwargs[key] = build(data[key], base_dir, problems)

    from kubetune.training.spec import job_problems

    problems.extend(
        job_problems(
            name=kwargs.get("name"),
            namespace=kwargs.get("namespace") or "default",
            num_workers=kwargs.get("num_workers", 1),
            num_procs_per_worker=kwargs.get("num_procs_per_worker", 1),
            resources_per_worker=kwargs.get("resources_per_worker"),
            storage=kwargs.get("storage_config"),
            env=kwargs.get("env_vars"),
            init_env=kwargs.get("init_env_vars"),
            labels=kwargs.get("labels"),
            annotations=kwargs.get("annotations"),
        )
        if "name" in kwargs
        else []
    )
    if problems:
        listing = "\n".join(f"  - {p}" for p in problems)
        raise JobFileError(f"{source}: {len(problems)} problem(s):\n{listing}")
    return kwargs


def _model_params(value: Any, base_dir: Path, problems: list[str]) -> Any:
    from kubetune.storage_initializer.hugging_face import HuggingFaceModelParams

    where = "model_provider_parameters"
    fields = _mapping(value, where, problems)
    if fields is None:
        return None
    uri = fields.get("model_uri")
    if isinstance(uri, str) and (uri.startswith("./") or uri.startswith("../")):
        fields["model_uri"] = os.path.normpath(base_dir / uri)
        if not Path(fields["model_uri"]).is_dir():
            problems.append(
                f"{where}.model_uri={uri!r}: {fields['model_uri']} (relative to the job file) is not a folder"
            )
    return _build(HuggingFaceModelParams, fields, where, problems)


def _dataset_params(value: Any, base_dir: Path, problems: list[str]) -> Any:
    from kubetune.storage_initializer.hugging_face import HuggingFaceDatasetParams
    from kubetune.storage_initializer.local import LocalDatasetParams
    from kubetune.storage_initializer.s3 import S3DatasetParams

    where = "dataset_provider_parameters"
    if not isinstance(value, dict) or len(value) != 1 or next(iter(value)) not in DATASET_KINDS:
        given = list(value) if isinstance(value, dict) else type(value).__name__
        problems.append(
            f"{where}: must be a mapping with exactly one key naming the kind ({', '.join(DATASET_KINDS)}), "
            f"e.g. {{local: {{path: data/train.csv}}}}; got {given}"
        )
        return None
    kind, inner = next(iter(value.items()))
    where = f"{where}.{kind}"
    fields = _mapping(inner, where, problems)
    if fields is None:
        return None
    classes: dict[str, type] = {
        "hf": HuggingFaceDatasetParams,
        "s3": S3DatasetParams,
        "local": LocalDatasetParams,
    }
    if kind == "local" and isinstance(fields.get("path"), str):
        given = fields["path"]
        fields["path"] = os.path.normpath(base_dir / os.path.expanduser(given))
        if not os.path.exists(fields["path"]):
            problems.append(
                f"{where}.path={given!r}: {fields['path']}"
                f"{'' if os.path.isabs(given) else ' (relative to the job file)'} does not exist"
            )
    return _build(classes[kind], fields, where, problems)


def _trainer_params(value: Any, base_dir: Path, problems: list[str]) -> Any:
    from peft import LoraConfig
    from transformers import TrainingArguments

    from kubetune.storage_initializer.hugging_face import HuggingFaceTrainerParams

    where = "trainer_parameters"
    fields = _mapping(value, where, problems)
    if fields is None:
        return None
    extra_keys = [
        f.name
        for f in dataclasses.fields(HuggingFaceTrainerParams)
        if f.name not in ("training_parameters", "lora_config")
    ]
    allowed = ("training_parameters", "lora_config", *extra_keys)
    for key in fields:
        if key not in allowed:
            problems.append(_unknown(f"{where}.{key}", key, allowed))
    if "training_parameters" not in fields:
        problems.append(
            f"{where}.training_parameters: missing (required: TrainingArguments fields)"
        )
        return None
    kwargs: dict[str, Any] = {k: fields[k] for k in extra_keys if k in fields}
    training = _mapping(fields["training_parameters"], f"{where}.training_parameters", problems)
    if training is None:
        return None
    kwargs["training_parameters"] = _build(
        TrainingArguments, training, f"{where}.training_parameters", problems
    )
    ok = kwargs["training_parameters"] is not None
    if fields.get("lora_config") is not None:
        lora_fields = _mapping(fields["lora_config"], f"{where}.lora_config", problems)
        kwargs["lora_config"] = lora_fields and _build(
            LoraConfig, lora_fields, f"{where}.lora_config", problems
        )
        ok = ok and kwargs["lora_config"] is not None
    elif "lora_config" in fields:
        kwargs["lora_config"] = None  # null: full fine-tuning
    if not ok:
        return None
    return _build(HuggingFaceTrainerParams, kwargs, where, problems, check_fields=False)


def _mapping(value: Any, where: str, problems: list[str]) -> dict[str, Any] | None:
    if not isinstance(value, dict):
        problems.append(f"{where}: must be a mapping of fields, not {type(value).__name__}")
        return None
    return dict(value)


def _build(
    cls: type, fields: dict[str, Any], where: str, problems: list[str], check_fields: bool = True
) -> Any:
    """`cls(**fields)`, or None with the problems (unknown fields, rejected values) recorded."""
    if check_fields:
        allowed = [f.name for f in dataclasses.fields(cls) if f.init and not f.name.startswith("_")]
        unknown = [k for k in fields if k not in allowed]
        for key in unknown:
            problems.append(_unknown(f"{where}.{key}", key, allowed, what=cls.__name__))
        if unknown:
            return None
    try:
        return cls(**fields)
    except (ValueError, TypeError) as e:
        message = str(e).replace("\n", "\n    ")
        problems.append(f"{where}: {message}")
        return None


def _unknown(path: str, key: Any, allowed: tuple[str, ...] | list[str], what: str = "") -> str:
    close = difflib.get_close_matches(str(key), list(allowed), n=3)
    hint = f"; did you mean {' or '.join(close)}?" if close else ""
    listing = "" if len(allowed) > 20 else f"; allowed: {', '.join(allowed)}"
    owner = f" of {what}" if what else ""
    return f"{path}: unknown key{owner}{hint}{listing}"
