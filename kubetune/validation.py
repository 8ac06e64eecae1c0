"""Pure validators shared by the params classes and job-level checks.

Each check returns an error message (naming field, value and what is allowed) or None;
`Problems` collects them so one `ValueError` reports everything wrong at once.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

_DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_QUANTITY = re.compile(
    r"^[+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+|Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$"
)
# One term of the datasets split grammar: name, optionally sliced by absolute or percent bounds.
_SPLIT_TERM = re.compile(
    r"^(?P<name>\w+(?:\.\w+)*)"
    r"(?:\[(?P<from>-?\d+%?)?:(?P<to>-?\d+%?)?\])?"
    r"(?:\((?P<rounding>closest|pct1_dropremainder)\))?$"
)
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_IPV4 = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")
_EXTENDED_RESOURCE = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)

STANDARD_RESOURCES = ("cpu", "memory", "gpu")


class Problems:
    """Collects validation messages for one object and raises them together."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.messages: list[str] = []

    def add(self, message: str | None) -> None:
        if message:
            self.messages.append(message)

    def extend(self, messages: Iterable[str | None]) -> None:
        for message in messages:
            self.add(message)

    def raise_if_any(self) -> None:
        if self.messages:
            if len(self.messages) == 1:
                raise ValueError(f"{self.what}: {self.messages[0]}")
            listing = "\n".join(f"  - {m}" for m in self.messages)
            raise ValueError(f"{self.what}: {len(self.messages)} problems:\n{listing}")


def non_empty_str(field: str, value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return f"{field}={value!r}: must be a non-empty string"
    return None


def optional_str(field: str, value: Any) -> str | None:
    if value is not None and (not isinstance(value, str) or not value.strip()):
        return f"{field}={value!r}: must be a non-empty string or None"
    return None


def dns1035_label(field: str, value: Any) -> str | None:
    if not isinstance(value, str) or len(value) > 63 or not _DNS1035.match(value):
        return (
            f"{field}={value!r}: must be a DNS-1035 label (at most 63 characters: lower-case "
            "letters, digits and '-', starting with a letter and ending with a letter or digit)"
        )
    return None


def dns1123_label(field: str, value: Any) -> str | None:
    if (
        not isinstance(value, str)
        or len(value) > 63
        or not re.match(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", value)
    ):
        return (
            f"{field}={value!r}: must be a DNS-1123 label (at most 63 characters: lower-case "
            "letters, digits and '-', starting and ending with a letter or digit)"
        )
    return None


def positive_int(field: str, value: Any, allowed_extra: tuple[str, ...] = ()) -> str | None:
    if value in allowed_extra:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        extra = "".join(f" or {e!r}" for e in allowed_extra)
        return f"{field}={value!r}: must be an integer >= 1{extra}"
    return None


def is_quantity(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return value >= 0
    return isinstance(value, str) and bool(_QUANTITY.match(value))


def resources(field: str, value: Any) -> list[str]:
    """Checks a `resources_per_worker` mapping: known or extended resource names, quantity values."""
    if value is None:
        return []
    if not isinstance(value, dict):
        return [
            f"{field}={value!r}: must be a mapping such as {{'cpu': 2, 'memory': '10G', 'gpu': 1}}"
        ]
    messages = []
    for key, quantity in value.items():
        if not isinstance(key, str) or (
            key not in STANDARD_RESOURCES and ("/" not in key or not _EXTENDED_RESOURCE.match(key))
        ):
            messages.append(
                f"{field}[{key!r}]: unknown resource; allowed: cpu, memory, gpu, or an extended "
                "resource name such as 'nvidia.com/gpu'"
            )
        elif not is_quantity(quantity):
            messages.append(
                f"{field}[{key!r}]={quantity!r}: not a Kubernetes quantity (examples: 2, '500m', '10G', '4Gi')"
            )
        elif key in ("gpu", "nvidia.com/gpu") and not _whole_number(quantity):
            messages.append(f"{field}[{key!r}]={quantity!r}: GPUs must be a whole number")
    return messages


def _whole_number(quantity: Any) -> bool:
    if isinstance(quantity, int):
        return True
    return isinstance(quantity, str) and quantity.isdigit()


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


def s3_bucket(field: str, value: Any) -> str | None:
    allowed = (
        "3-63 characters of lower-case letters, digits, '.' and '-', starting and ending with a "
        "letter or digit, no '..', not an IP address"
    )
    if (
        not isinstance(value, str)
        or not _BUCKET.match(value)
        or ".." in value
        or _IPV4.match(value)
    ):
        return f"{field}={value!r}: not a valid S3 bucket name ({allowed})"
    if value.startswith("xn--") or value.endswith("-s3alias") or value.endswith("--ol-s3"):
        return f"{field}={value!r}: reserved S3 bucket prefix or suffix ({allowed})"
    return None


def object_key(field: str, value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return f"{field}={value!r}: must be a non-empty object key such as 'datasets/train.csv'"
    if ".." in value.split("/"):
        return f"{field}={value!r}: must not contain a '..' path component"
    return None
