"""Experiment YAML files: one hyperparameter search as `KatibClient.tune()`'s keyword arguments.

```yaml
name: bert-search
resources_per_worker: {cpu: 1, memory: 2G}          # each trial: num_workers, num_procs_per_worker too
model_provider_parameters: {model_uri: ./models/bert, transformer_type: AutoModelForSequenceClassification}
dataset_provider_parameters: {local: {path: data/train.csv}}
trainer_parameters:
  training_parameters:
    output_dir: out
    learning_rate: {double: {min: 1.0e-5, max: 5.0e-5, distribution: logUniform}}
  lora_config:
    r: {int: {min: 8, max: 32}}
    lora_dropout: {categorical: [0.0, 0.1]}
objective_metric_name: train_loss
objective_type: minimize
algorithm_name: tpe
max_trial_count: 8
parallel_trial_count: 2
```

A job file's keys (kubetune.jobfile: `name`, `namespace`, `num_workers`, `num_procs_per_worker`,
`resources_per_worker`, `storage_config`, `env_vars`, the three params) describe each trial;
a search space stands where a `TrainingArguments` or `LoraConfig` value goes, as
`{double: {min, max, step, distribution}}`, `{int: {min, max, step}}` or `{categorical: [...]}`
(every field can be searched this way, also those whose own checks refuse a Python search
space). The experiment's keys are `tune()`'s: EXPERIMENT_KEYS. Every problem is reported at
once, each with its key path.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubetune.jobfile import JobFileError, job_kwargs, read_yaml
from kubetune.katib.space import (
    LORA_CONFIG,
    PARAMETER_TYPES,
    TRAINING_ARGUMENTS,
    Parameter,
    parameter_from_mapping,
)

EXPERIMENT_KEYS = (
    "objective_metric_name",
    "objective_type",
    "objective_goal",
    "additional_metric_names",
    "algorithm_name",
    "algorithm_settings",
    "max_trial_count",
    "parallel_trial_count",
    "max_failed_trial_count",
    "retain_trials",
    "trial_active_deadline_seconds",
    "early_stopping",
)
# Job-file keys that a trial does not take (tune() has no such argument).
NOT_FOR_TRIALS = ("init_env_vars", "labels", "annotations", "queue_name", "max_restarts")
SECTIONS = {"training_parameters": TRAINING_ARGUMENTS, "lora_config": LORA_CONFIG}


def is_search_space(value: Any) -> bool:
    """Whether a YAML value is a search space: a mapping with one key, double, int or categorical."""
    return isinstance(value, dict) and len(value) == 1 and next(iter(value)) in PARAMETER_TYPES


def is_experiment_file(data: Any) -> bool:
    """Whether parsed YAML describes an experiment (it has an experiment key or a search space)."""
    if not isinstance(data, dict):
        return False
    if any(key in data for key in EXPERIMENT_KEYS):
        return True
    trainer = data.get("trainer_parameters")
    if not isinstance(trainer, dict):
        return False
    return any(
        is_search_space(value)
        for section in SECTIONS
        if isinstance(trainer.get(section), dict)
        for value in trainer[section].values()
    )


def load_experiment_file(
    path: str | os.PathLike[str], on_read: Callable[[], None] | None = None
) -> dict[str, Any]:
    """`tune()`'s keyword arguments from the experiment YAML at `path` (JobFileError listing
    every problem); `on_read()` is called once the YAML is read, before the values are checked."""
    path = Path(path)
    data = read_yaml(path)
    if on_read is not None:
        on_read()
    return experiment_kwargs(data, base_dir=path.resolve().parent, source=str(path))


def experiment_kwargs(data: Any, base_dir: Path, source: str = "experiment file") -> dict[str, Any]:
    """`tune()` keyword arguments from parsed experiment YAML (see the module docstring)."""
    if not isinstance(data, dict):
        raise JobFileError(
            f"{source}: the experiment file must be a mapping of tune() arguments, not {type(data).__name__}"
        )
    problems: list[str] = []
    job = {k: v for k, v in data.items() if k not in EXPERIMENT_KEYS}
    for key in NOT_FOR_TRIALS:
        if key in job:
            problems.append(f"{key}: not an experiment key (tune() has no such argument)")
            job.pop(key)
    parameters = _take_search_spaces(job, problems)
    try:
        kwargs = job_kwargs(job, base_dir, source)
    except JobFileError as e:
        problems.extend(_listed(str(e)))
        kwargs = {}
    if problems:
        listing = "\n".join(f"  - {p}" for p in problems)
        raise JobFileError(f"{source}: {len(problems)} problem(s):\n{listing}")
    from kubetune.katib.types.types import TrainerResources

    tune: dict[str, Any] = {
        key: kwargs[key]
        for key in (
            "name",
            "namespace",
            "model_provider_parameters",
            "dataset_provider_parameters",
            "trainer_parameters",
            "storage_config",
        )
        if key in kwargs
    }
    if "env_vars" in kwargs:
        tune["env_per_trial"] = kwargs["env_vars"]
    tune["resources_per_trial"] = TrainerResources(
        num_workers=kwargs.get("num_workers", 1),
        num_procs_per_worker=kwargs.get("num_procs_per_worker", 1),
        resources_per_worker=kwargs.get("resources_per_worker"),
    )
    tune.update({key: data[key] for key in EXPERIMENT_KEYS if key in data})
    tune["search_parameters"] = parameters
    return tune


def _take_search_spaces(job: dict[str, Any], problems: list[str]) -> list[Parameter]:
    """The search spaces of the trainer parameters, each replaced (in `job`) by a value of it."""
    trainer = job.get("trainer_parameters")
    if not isinstance(trainer, dict):
        return []
    trainer = job["trainer_parameters"] = dict(trainer)
    found = []
    for section, target in SECTIONS.items():
        fields = trainer.get(section)
        if not isinstance(fields, dict):
            continue
        fields = trainer[section] = dict(fields)
        for key, value in list(fields.items()):
            if not is_search_space(value):
                continue
            where = f"trainer_parameters.{section}.{key}"
            parameter, wrong = parameter_from_mapping(str(key), value, target, str(key), where)
            problems.extend(wrong)
            if parameter is None:
                del fields[key]  # reported; the field's own checks would only repeat it
            else:
                found.append(parameter)
                fields[key] = parameter.sample()
    return found


def _listed(message: str) -> list[str]:
    _, many, rest = message.partition(" problem(s):\n")
    if many:
        return [line.removeprefix("  - ") for line in rest.splitlines() if line.startswith("  - ")]
    return [message]
