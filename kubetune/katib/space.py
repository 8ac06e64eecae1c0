"""The search space of an experiment: its parameters, where each value goes, and the values.

A `Parameter` is one search space (Katib's `V1beta1ParameterSpec`, or a `{double: ...}`,
`{int: ...}`, `{categorical: [...]}` mapping of an experiment file) with its target: a field of
the trial's `TrainingArguments` ('training_arguments', field) or `LoraConfig` ('lora_config',
field), or a key of a custom objective's `parameters` ('parameters', key). Katib hands each
trial its values as text; `Parameter.value` turns that text back into the typed value the field
takes (a float, an int, or the very item of a categorical list).
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kubetune.contract.spec import TrainerSpec
from kubetune.params.validation import is_search_space

PARAMETER_TYPES = ("double", "int", "categorical")
# Katib's feasible-space distributions that the local search runs (normal, logNormal are not).
DISTRIBUTIONS = ("uniform", "logUniform")
TRAINING_ARGUMENTS = "training_arguments"
LORA_CONFIG = "lora_config"
FUNCTION_PARAMETERS = "parameters"
SECTIONS = (TRAINING_ARGUMENTS, LORA_CONFIG, FUNCTION_PARAMETERS)
# Where the trainer params hold each section (HuggingFaceTrainerParams attribute).
PARAMS_ATTRIBUTES = {TRAINING_ARGUMENTS: "training_parameters", LORA_CONFIG: "lora_config"}
# Katib's rule for parameter names (they become `${trialParameters.<name>}`).
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
# Grids bigger than this are refused: a typo (a step of 1e-9) would otherwise hang the search.
MAX_GRID = 100_000


@dataclass(frozen=True)
class Parameter:
    """One search space and the field its values go to."""

    name: str
    parameter_type: str
    section: str
    field: str
    min: float | int | None = None
    max: float | int | None = None
    step: float | int | None = None
    choices: tuple[Any, ...] = ()
    distribution: str | None = None

    @property
    def log(self) -> bool:
        """Whether values are drawn on a log scale (distribution logUniform)."""
        return self.distribution == "logUniform"

    @property
    def where(self) -> str:
        """The field's path as the user wrote it (e.g. training_parameters.learning_rate)."""
        return f"{PARAMS_ATTRIBUTES.get(self.section, self.section)}.{self.field}"

    def sample(self) -> Any:
        """A value of the space (its lower end, or its first choice): stands in for the space
        where a whole job is checked before the search starts."""
        return self.choices[0] if self.parameter_type == "categorical" else self.min

    def value(self, text: Any) -> Any:
        """The typed value of a suggestion given as text (as Katib substitutes it); ValueError
        when it is not in the space's type."""
        if self.parameter_type == "categorical":
            for choice in self.choices:
                if choice == text or str(choice) == str(text):
                    return choice
            raise ValueError(f"{self.name}={text!r}: not one of {[str(c) for c in self.choices]}")
        if self.parameter_type == "int":
            number = float(text)
            if not number.is_integer():
                raise ValueError(f"{self.name}={text!r}: not an integer")
            return int(number)
        return float(text)

    def text(self, value: Any) -> str:
        """A value as Katib records it in a parameter assignment (text)."""
        if self.parameter_type == "int":
            return str(int(value))
        if self.parameter_type == "double":
            return repr(float(value))
        return str(value)

    def grid(self) -> list[Any]:
        """Every value of the space for grid search; ValueError for a double without a step."""
        if self.parameter_type == "categorical":
            return list(self.choices)
        if self.step is None and self.parameter_type == "double":
            raise ValueError(
                f"{self.where}: grid search needs a step for a double "
                "(search.double(min, max, step=...))"
            )
        assert self.min is not None and self.max is not None
        step = self.step or 1
        count = math.floor((self.max - self.min) / step + 1e-9) + 1
        if count > MAX_GRID:
            raise ValueError(
                f"{self.where}: {count} grid values (min {self.min}, max {self.max}, step {step}); "
                f"at most {MAX_GRID}"
            )
        if self.parameter_type == "int":
            return [int(self.min + i * step) for i in range(count)]
        return [round(self.min + i * step, 12) for i in range(count)]

    def to_api(self) -> dict[str, Any]:
        """The parameter as an Experiment's `spec.parameters` item (values as text)."""
        space: dict[str, Any] = {}
        if self.parameter_type == "categorical":
            space["list"] = [str(c) for c in self.choices]
        else:
            space["min"] = self.text(self.min)
            space["max"] = self.text(self.max)
            if self.step is not None:
                space["step"] = self.text(self.step)
            if self.distribution is not None:
                space["distribution"] = self.distribution
        return {"name": self.name, "parameterType": self.parameter_type, "feasibleSpace": space}

    def to_dict(self) -> dict[str, Any]:
        """The parameter as JSON data (typed values)."""
        data = dataclasses.asdict(self)
        data["choices"] = list(self.choices)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Parameter:
        """The parameter from `to_dict`'s data."""
        return cls(**{**data, "choices": tuple(data.get("choices") or ())})


# --- reading search spaces ---------------------------------------------------------------------


def parameter_from_spec(
    name: str, spec: Any, section: str, field: str
) -> tuple[Parameter | None, list[str]]:
    """A Parameter from a Katib `V1beta1ParameterSpec`; (None, problems) when it is not valid.

    A categorical spec made by Katib's own `katib.search.categorical` (which puts the values in
    `feasible_space.distribution`, katib#2625) is read as meant."""
    where = f"{PARAMS_ATTRIBUTES.get(section, section)}.{field}"
    space = getattr(spec, "feasible_space", None)
    kind = getattr(spec, "parameter_type", None)
    values: dict[str, Any] = {}
    if space is not None:
        values = {
            "min": getattr(space, "min", None),
            "max": getattr(space, "max", None),
            "step": getattr(space, "step", None),
            "list": getattr(space, "list", None),
            "distribution": getattr(space, "distribution", None),
        }
        misplaced = isinstance(values["distribution"], list | tuple)
        if kind == "categorical" and values["list"] is None and misplaced:
            values["list"], values["distribution"] = values["distribution"], None
    return _parameter(name, kind, values, section, field, where)


def parameter_from_mapping(
    name: str, value: Mapping[str, Any], section: str, field: str, where: str
) -> tuple[Parameter | None, list[str]]:
    """A Parameter from an experiment file's `{double: {min, max, step, distribution}}`,
    `{int: {...}}` or `{categorical: [...]}`."""
    if len(value) != 1 or next(iter(value)) not in PARAMETER_TYPES:
        return None, [
            f"{where}: a search space is a mapping with one key, double, int or categorical "
            f"(e.g. {{double: {{min: 1.0e-5, max: 5.0e-5}}}}); got keys {sorted(map(str, value))}"
        ]
    kind, inner = next(iter(value.items()))
    if kind == "categorical":
        if not isinstance(inner, list):
            return None, [f"{where}.categorical: must be a list of values, e.g. [8, 16, 32]"]
        return _parameter(name, kind, {"list": inner}, section, field, where)
    if not isinstance(inner, dict):
        return None, [
            f"{where}.{kind}: must be a mapping with min and max (and step, distribution)"
        ]
    unknown = sorted(set(inner) - {"min", "max", "step", "distribution"})
    if unknown:
        return None, [
            f"{where}.{kind}: unknown keys {unknown}; allowed: min, max, step, distribution"
        ]
    values = {k: (None if inner.get(k) is None else str(inner[k])) for k in ("min", "max", "step")}
    values["distribution"] = inner.get("distribution")
    return _parameter(name, kind, values, section, field, where)


def _parameter(
    name: str, kind: Any, values: Mapping[str, Any], section: str, field: str, where: str
) -> tuple[Parameter | None, list[str]]:
    problems: list[str] = []
    if not isinstance(name, str) or not _NAME.match(name):
        problems.append(
            f"{where}: {name!r} cannot name a search parameter (letters, digits, '_' and '-', "
            "starting with a letter or '_')"
        )
    if kind not in PARAMETER_TYPES:
        return None, [
            *problems,
            f"{where}: parameter_type={kind!r}: allowed: {', '.join(PARAMETER_TYPES)}",
        ]
    if kind == "categorical":
        choices = values.get("list")
        if not isinstance(choices, list | tuple) or not choices:
            return None, [*problems, f"{where}: search.categorical needs a non-empty list"]
        wrong = [c for c in choices if not isinstance(c, str | int | float | bool) or c is None]
        if wrong:
            problems.append(
                f"{where}: search.categorical({list(choices)!r}): values must be strings, numbers "
                f"or booleans, not {type(wrong[0]).__name__}"
            )
        texts = [str(c) for c in choices]
        if len(set(texts)) != len(texts):
            problems.append(f"{where}: search.categorical({list(choices)!r}): values must differ")
        if problems:
            return None, problems
        return Parameter(name, kind, section, field, choices=tuple(choices)), []

    call = f"search.{kind}(min={values.get('min')}, max={values.get('max')})"
    number = int if kind == "int" else float
    parsed: dict[str, Any] = {}
    for key in ("min", "max", "step"):
        text = values.get(key)
        if text is None:
            if key != "step":
                problems.append(f"{where}: {call}: {key} is required")
            continue
        try:
            parsed[key] = _number(text, number)
        except ValueError:
            kind_text = "an integer" if kind == "int" else "a number"
            problems.append(f"{where}: {call}: {key}={text!r} is not {kind_text}")
    distribution = values.get("distribution")
    if distribution is not None and distribution not in DISTRIBUTIONS:
        problems.append(
            f"{where}: distribution={distribution!r}: allowed: {', '.join(DISTRIBUTIONS)} "
            "(normal and logNormal are not supported)"
        )
    if "min" in parsed and "max" in parsed:
        if parsed["min"] >= parsed["max"]:
            problems.append(f"{where}: {call}: min must be less than max")
        if distribution == "logUniform" and parsed["min"] <= 0:
            problems.append(f"{where}: {call}: a logUniform distribution needs min > 0")
    if parsed.get("step") is not None and parsed["step"] <= 0:
        problems.append(f"{where}: {call}: step={parsed['step']} must be positive")
    if problems:
        return None, problems
    return (
        Parameter(
            name,
            kind,
            section,
            field,
            min=parsed["min"],
            max=parsed["max"],
            step=parsed.get("step"),
            distribution=distribution,
        ),
        [],
    )


def _number(text: Any, number: type) -> float | int:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    if number is int:
        if not value.is_integer():
            raise ValueError(text)
        return int(value)
    return value


# --- search spaces inside the params -----------------------------------------------------------


def spaces_in(obj: Any) -> dict[str, Any]:
    """The fields of a dataclass instance (TrainingArguments, LoraConfig) that hold a search space."""
    if obj is None or not dataclasses.is_dataclass(obj):
        return {}
    return {
        f.name: getattr(obj, f.name)
        for f in dataclasses.fields(obj)
        if f.init and is_search_space(getattr(obj, f.name, None))
    }


def take_spaces_from_trainer(trainer_parameters: Any) -> tuple[Any, list[Parameter], list[str]]:
    """The search spaces of `trainer_parameters`' TrainingArguments and LoraConfig.

    Returns (a copy of the params with each space replaced by a value of it, the Parameters,
    problems). The user's objects are left as they are."""
    parameters: list[Parameter] = []
    problems: list[str] = []
    changes: dict[str, Any] = {}
    for section, attribute in PARAMS_ATTRIBUTES.items():
        obj = getattr(trainer_parameters, attribute, None)
        found = spaces_in(obj)
        if not found:
            continue
        samples = {}
        for field, spec in found.items():
            parameter, wrong = parameter_from_spec(field, spec, section, field)
            problems.extend(wrong)
            if parameter is not None:
                parameters.append(parameter)
                samples[field] = parameter.sample()
        if len(samples) == len(found):
            try:
                changes[attribute] = dataclasses.replace(obj, **samples)  # type: ignore[type-var]
            except (TypeError, ValueError) as e:
                problems.append(f"{attribute}: a value of its search spaces is refused: {e}")
    if problems or not changes:
        return trainer_parameters, parameters, problems
    return replace_trainer_parts(trainer_parameters, changes), parameters, problems


def replace_trainer_parts(trainer_parameters: Any, changes: dict[str, Any]) -> Any:
    """A copy of HuggingFaceTrainerParams with some attributes replaced (validated again)."""
    return dataclasses.replace(trainer_parameters, **changes)


def duplicate_names(parameters: Iterable[Parameter]) -> list[str]:
    """Problems: two search spaces of one name."""
    seen: dict[str, Parameter] = {}
    problems = []
    for parameter in parameters:
        if parameter.name in seen:
            problems.append(
                f"{parameter.where} and {seen[parameter.name].where}: two search spaces named "
                f"{parameter.name!r}; Katib names each parameter after its field, so one field "
                "name can be searched once"
            )
        seen.setdefault(parameter.name, parameter)
    return problems


def set_values(
    trainer: TrainerSpec, parameters: Iterable[Parameter], values: Mapping[str, Any]
) -> TrainerSpec:
    """The trainer section with each parameter's value in its TrainingArguments or LoraConfig
    field (ValueError when the job has no LoraConfig for a LoraConfig field)."""
    return _edit_fields(
        trainer, parameters, lambda fields, p: fields.update({p.field: values[p.name]})
    )


def without_searched(trainer: TrainerSpec, parameters: Iterable[Parameter]) -> TrainerSpec:
    """The trainer section without the fields the parameters search (each trial sets its own)."""
    return _edit_fields(trainer, parameters, lambda fields, p: fields.pop(p.field, None))


def _edit_fields(
    trainer: TrainerSpec,
    parameters: Iterable[Parameter],
    edit: Callable[[dict[str, Any], Parameter], object],
) -> TrainerSpec:
    sections = {
        TRAINING_ARGUMENTS: dict(trainer.training_arguments),
        LORA_CONFIG: None if trainer.lora_config is None else dict(trainer.lora_config),
    }
    for parameter in parameters:
        if parameter.section not in sections:
            continue
        fields = sections[parameter.section]
        if fields is None:
            raise ValueError(f"{parameter.where}: the job has no {parameter.section}")
        edit(fields, parameter)
    training_arguments = sections[TRAINING_ARGUMENTS]
    assert training_arguments is not None
    return dataclasses.replace(
        trainer, training_arguments=training_arguments, lora_config=sections[LORA_CONFIG]
    )


def combinations(parameters: Iterable[Parameter]) -> int:
    """How many points the grid of `parameters` has."""
    return math.prod(len(p.grid()) for p in parameters)
