"""The rules on what a user may ask for: pure checks shared by the params classes and the
job-level rules (`kubetune.params.job`).

Each check returns an error message (naming field, value and what is allowed) or None;
`Problems` collects them so one `ValueError` reports everything wrong at once.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import math
import os
import re
import types
import typing
from collections.abc import Iterable
from typing import Any

from kubetune.contract.problems import shown
from kubetune.contract.quantities import GPU_KEYS, parse_quantity

_DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
# One term of the datasets split grammar: name, optionally sliced by absolute or percent bounds.
_SPLIT_TERM = re.compile(
    r"^(?P<name>\w+(?:\.\w+)*)"
    r"(?:\[(?P<from>-?\d+%?)?:(?P<to>-?\d+%?)?\])?"
    r"(?:\((?P<rounding>closest|pct1_dropremainder)\))?$"
)
_EXTENDED_RESOURCE = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)

STANDARD_RESOURCES = ("cpu", "memory", "gpu")

# Bounds of the numbers a job may ask for: beyond them a value is a typo, not a plan.
MAX_WORKERS = 1024
MAX_PROCS_PER_WORKER = 256
MAX_RESTARTS = 1000
MAX_CPU = 1024  # cores per worker
MAX_MEMORY = 64 * 2**40  # bytes per worker (64Ti)
MAX_GPUS = 64  # per worker
MAX_EXTENDED_RESOURCE = 1_000_000  # units of an extended resource per worker
MAX_STORAGE = 2**50  # bytes (1Pi)
MAX_LENGTH = 1_048_576  # tokens
MAX_LABELS = 1_000_000
MAX_MIX_DATASETS = 64  # datasets in one mix
MAX_NUM_SAMPLES = 10**10  # rows taken from one dataset of a mix
MAX_WEIGHT = 1e6  # a mix weight (weights are relative: only their ratios count)


def is_search_space(value: Any) -> bool:
    """Whether `value` is a hyperparameter search space (Katib's `V1beta1ParameterSpec`, what
    `kubetune.katib.search.double/int/categorical` return): it stands where a value goes, and
    `KatibClient.tune()` checks it. Imports nothing."""
    return type(value).__name__ == "V1beta1ParameterSpec" and hasattr(value, "feasible_space")


def raise_if(problem: str | None) -> None:
    """Raises ValueError(problem) when a check found one."""
    if problem:
        raise ValueError(problem)


def non_empty_str(field: str, value: Any) -> str | None:
    """The message for `value` unless it is a non-empty string, else None."""
    if not isinstance(value, str) or not value.strip():
        return f"{field}={value!r}: must be a non-empty string"
    return None


def optional_str(field: str, value: Any) -> str | None:
    """The message for `value` unless it is None or a non-empty string, else None."""
    if value is not None and (not isinstance(value, str) or not value.strip()):
        return f"{field}={value!r}: must be a non-empty string or None"
    return None


def one_of(field: str, value: Any, allowed: Iterable[str]) -> str | None:
    """The message for `value` unless it is None or one of `allowed`, else None."""
    choices = list(allowed)
    if value is not None and value not in choices:
        return f"{field}={shown(value)}: must be one of {', '.join(map(repr, choices))} or None"
    return None


def dns1035_label(field: str, value: Any) -> str | None:
    """The message for `value` unless it is a DNS-1035 label (a job name), else None."""
    if not isinstance(value, str) or len(value) > 63 or not _DNS1035.match(value):
        return (
            f"{field}={shown(value)}: must be a DNS-1035 label (at most 63 characters: lower-case "
            "letters, digits and '-', starting with a letter and ending with a letter or digit)"
        )
    return None


def dns1123_label(field: str, value: Any) -> str | None:
    """The message for `value` unless it is a DNS-1123 label (a namespace), else None."""
    if (
        not isinstance(value, str)
        or len(value) > 63
        or not re.match(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", value)
    ):
        return (
            f"{field}={shown(value)}: must be a DNS-1123 label (at most 63 characters: lower-case "
            "letters, digits and '-', starting and ending with a letter or digit)"
        )
    return None


def secret_str(field: str, value: Any, required: bool = False) -> str | None:
    """Checks a credential without ever showing its value: a non-empty string (or None)."""
    if value is None and not required:
        return None
    if isinstance(value, str) and value.strip():
        return None
    got = "an empty string" if isinstance(value, str) else type(value).__name__
    allowed = "a non-empty string" + ("" if required else " or None")
    return f"{field}: must be {allowed}, not {got} (the value is not shown)"


def int_in_range(
    field: str, value: Any, low: int, high: int, allowed_extra: tuple[str, ...] = ()
) -> str | None:
    """Checks an integer field: `low` <= value <= `high`, or one of `allowed_extra`."""
    if isinstance(value, str) and value in allowed_extra:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        extra = "".join(f" or {e!r}" for e in allowed_extra)
        return f"{field}={shown(value)}: must be an integer from {low} to {high}{extra}"
    return None


def positive_int(field: str, value: Any, allowed_extra: tuple[str, ...] = ()) -> str | None:
    """The message for `value` unless it is an integer >= 1 (or one of `allowed_extra`), else None."""
    if isinstance(value, str) and value in allowed_extra:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        extra = "".join(f" or {e!r}" for e in allowed_extra)
        return f"{field}={shown(value)}: must be an integer >= 1{extra}"
    return None


def positive_number(field: str, value: Any, high: float) -> str | None:
    """Checks a number field: finite, above 0 and at most `high` (an int or a float)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not 0 < value <= high
    ):
        return f"{field}={shown(value)}: must be a number above 0 and at most {high:g}"
    return None


def quantity_in_range(
    field: str, value: Any, high: float, unit: str, zero_allowed: bool = False
) -> str | None:
    """Checks a quantity: a number above 0 (or 0 when `zero_allowed`) and at most `high`."""
    try:
        number = parse_quantity(value)
    except ValueError:
        return (
            f"{field}={shown(value)}: not a Kubernetes quantity (examples: 2, '500m', '10G', '4Gi')"
        )
    low_ok = number >= 0 if zero_allowed else number > 0
    if not low_ok or number > high:
        allowed = (
            f"from 0 to {_amount(high, unit)}"
            if zero_allowed
            else f"more than 0, at most {_amount(high, unit)}"
        )
        return f"{field}={shown(value)}: out of range; allowed: {allowed}"
    return None


def _amount(number: float, unit: str) -> str:
    if unit == "bytes":
        for suffix, size in (("Pi", 2**50), ("Ti", 2**40), ("Gi", 2**30)):
            if number >= size and number % size == 0:
                return f"{int(number // size)}{suffix}"
    return f"{number:g} {unit}".rstrip()


def resources(field: str, value: Any) -> list[str]:
    """Checks a `resources_per_worker` mapping: known or extended resource names, quantity values."""
    if value is None:
        return []
    if not isinstance(value, dict):
        return [
            f"{field}={value!r}: must be a mapping such as {{'cpu': 2, 'memory': '10G', 'gpu': 1}}"
        ]
    messages: list[str | None] = []
    for key, quantity in value.items():
        if not isinstance(key, str) or (
            key not in STANDARD_RESOURCES and ("/" not in key or not _EXTENDED_RESOURCE.match(key))
        ):
            messages.append(
                f"{field}[{shown(key)}]: unknown resource; allowed: cpu, memory, gpu, or an extended "
                "resource name such as 'nvidia.com/gpu'"
            )
            continue
        where = f"{field}[{key!r}]"
        if key == "cpu":
            messages.append(quantity_in_range(where, quantity, MAX_CPU, "cores"))
        elif key == "memory":
            messages.append(quantity_in_range(where, quantity, MAX_MEMORY, "bytes"))
        else:
            high = MAX_GPUS if key in GPU_KEYS else MAX_EXTENDED_RESOURCE
            problem = quantity_in_range(where, quantity, high, "", zero_allowed=True)
            if problem is None and not _whole_number(quantity):
                what = "GPUs" if key in GPU_KEYS else "extended resources"
                problem = f"{where}={shown(quantity)}: {what} must be a whole number"
            messages.append(problem)
    return [m for m in messages if m]


def _whole_number(quantity: Any) -> bool:
    if isinstance(quantity, int):
        return True
    return isinstance(quantity, str) and quantity.isdigit()


def output_dir(field: str, value: Any) -> str | None:
    """Checks `TrainingArguments.output_dir`: an absolute path, or a relative one that stays
    inside the job's outputs folder (no '..' leading out of it)."""
    if value is None:
        return None
    if not isinstance(value, str | os.PathLike) or not str(value).strip():
        return f"{field}={shown(value)}: must be a non-empty path"
    path = os.fspath(value)
    if os.path.isabs(path):
        return None
    normal = os.path.normpath(path)
    if normal == ".." or normal.startswith(".." + os.sep):
        return (
            f"{field}={path!r}: leads out of the job's outputs folder; allowed: a relative path "
            "inside it (e.g. 'my-model'), or an absolute path"
        )
    return None


def split_expression(field: str, value: Any) -> str | None:
    """Checks a datasets split expression such as 'train', 'train[:3000]', 'train[10%:]', 'train+test'."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        return f"{field}={value!r}: must be a split expression such as 'train', 'train[:3000]', 'train[10%:]' or 'train+test'"
    for term in value.split("+"):
        match = _SPLIT_TERM.match(term.strip())
        bad_percent = False
        if match:
            bounds = [match.group("from"), match.group("to")]
            kinds = {b.endswith("%") for b in bounds if b}
            bad_percent = len(kinds) > 1 or any(
                b and b.endswith("%") and abs(int(b[:-1])) > 100 for b in bounds
            )
            if match.group("rounding") and kinds != {True}:
                bad_percent = True
        if not match or bad_percent:
            return (
                f"{field}={value!r}: cannot parse split term {term!r}; allowed: a split name, optionally "
                "sliced like 'train[:3000]', 'train[10%:]', 'test[-500:]', joined with '+'"
            )
    return None


def object_key(field: str, value: Any) -> str | None:
    """The message for `value` unless it is an S3 object key without '..' parts, else None."""
    if not isinstance(value, str) or not value.strip():
        return f"{field}={value!r}: must be a non-empty object key such as 'datasets/train.csv'"
    if ".." in value.split("/"):
        return f"{field}={value!r}: must not contain a '..' path component"
    return None


# --- values against a dataclass's field annotations --------------------------------------------


def typed_fields(
    cls: type,
    values: dict[str, Any],
    where: str,
    secret_fields: Iterable[str] = (),
    numbers_from_text: bool = True,
) -> tuple[dict[str, Any], list[str]]:
    """Checks `values` against the type annotations of `cls`'s fields (TrainingArguments, LoraConfig).

    Returns the values, with numbers written as text ('1e-5', which YAML 1.1 reads as a
    string) turned into numbers where a number is expected (unless not `numbers_from_text`),
    and one message per value of the wrong type. Values of `secret_fields` are never shown.
    Annotations this check does not understand (classes, callables) accept anything: the
    class's own checks see them later.
    """
    hints = _type_hints(cls)
    secret = set(secret_fields)
    converted = dict(values)
    messages = []
    for name, value in values.items():
        hint = hints.get(name)
        if hint is None:
            continue
        ok, new = _accepts(hint, value)
        if ok and new is not value and not numbers_from_text:
            ok = False
        if ok:
            converted[name] = new
        elif name in secret:
            messages.append(secret_str(f"{where}.{name}", value) or f"{where}.{name}: wrong type")
        else:
            messages.append(f"{where}.{name}={shown(value)}: must be {_describe(hint)}")
    return converted, messages


def scalar_fields(cls: type) -> list[str]:
    """The fields of `cls` annotated as a number or a flag (int, float, bool, optionally None)."""
    scalars = {int, float, bool, type(None)}
    hints = _type_hints(cls)
    if dataclasses.is_dataclass(cls):
        hints = {
            f.name: hints[f.name] for f in dataclasses.fields(cls) if f.init and f.name in hints
        }
    names = []
    for name, hint in hints.items():
        members = (
            typing.get_args(hint)
            if typing.get_origin(hint) in (typing.Union, types.UnionType)
            else (hint,)
        )
        if set(members) <= scalars and set(members) != {type(None)}:
            names.append(name)
    return names


# Fields whose documented values are wider than their annotation.
_WIDER_HINTS: dict[str, Any] = {
    "resume_from_checkpoint": str | bool | None,  # True: the job's own latest checkpoint
}


@functools.cache
def _type_hints(cls: type) -> dict[str, Any]:
    try:
        hints = typing.get_type_hints(cls)
    except Exception:
        return {}
    return {**hints, **{k: v for k, v in _WIDER_HINTS.items() if k in hints}}


def _accepts(hint: Any, value: Any) -> tuple[bool, Any]:
    """Whether `value` fits `hint`, and the value to use (a number parsed from text)."""
    origin = typing.get_origin(hint)
    if hint is Any or isinstance(hint, typing.TypeVar):
        return True, value
    if hint is type(None):
        return value is None, value
    if origin in (typing.Union, types.UnionType):
        members = typing.get_args(hint)
        choices = _enum_of_names(members)
        if choices is not None and isinstance(value, str):
            return value in {m.value for m in choices}, value
        for member in members:  # exact fits first: a str field keeps the text '1e-5'
            ok, new = _accepts(member, value)
            if ok and new is value:
                return True, value
        for member in members:
            ok, new = _accepts(member, value)
            if ok:
                return True, new
        return False, value
    if origin is typing.Literal:
        literals = typing.get_args(hint)
        if any(isinstance(c, str) and "[" in c for c in literals):  # a pattern, not a value
            return isinstance(value, str) or value in literals, value
        return value in literals and type(value) in {type(c) for c in literals}, value
    if hint is bool:
        return isinstance(value, bool), value
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return math.isfinite(value), value
        if isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                return False, value
            return math.isfinite(number), number
        return False, value
    if hint is str:
        return isinstance(value, str), value
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return isinstance(value, hint) or value in {m.value for m in hint}, value
    if origin in (list, tuple) or hint in (list, tuple):
        return isinstance(value, list | tuple), value
    if origin is dict or hint is dict:
        return isinstance(value, dict), value
    return True, value


def _enum_of_names(members: tuple[Any, ...]) -> type[enum.Enum] | None:
    """The Enum of a `SomeEnum | str` annotation: the text must be one of its values."""
    enums = [m for m in members if isinstance(m, type) and issubclass(m, enum.Enum)]
    return enums[0] if len(enums) == 1 and str in members else None


def _describe(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        members = typing.get_args(hint)
        choices = _enum_of_names(members)
        shown_members = [m for m in members if m is not str] if choices is not None else members
        return " or ".join(dict.fromkeys(_describe(m) for m in shown_members))
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(c) for c in typing.get_args(hint))
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return "one of " + ", ".join(repr(m.value) for m in hint)
    names = {
        bool: "true or false",
        int: "an integer",
        float: "a number",
        str: "a string",
        type(None): "null (None)",
        list: "a list",
        tuple: "a list",
        dict: "a mapping",
    }
    return names.get(origin or hint, getattr(hint, "__name__", str(hint)))
