"""Kubernetes quantities, the names GPUs go by in `resources_per_worker`, and this machine's cores."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from typing import Any

from kubetune.contract.problems import shown

_QUANTITY = re.compile(
    r"^[+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+|Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$"
)
# The keys of `resources_per_worker` that count GPUs: kubetune's short name first, then the
# extended resource it becomes on Kubernetes.
GPU_KEYS = ("gpu", "nvidia.com/gpu")
KUBERNETES_GPU_KEY = "nvidia.com/gpu"


def parse_quantity(value: Any) -> float:
    """A Kubernetes quantity (2, '500m', '10G', '4Gi', '1e3') as a number.

    The one parser of quantities in kubetune: the Kubernetes client's, on the text the
    Kubernetes API accepts.

    Raises:
        ValueError: `value` is not a finite quantity.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{shown(value)} is not a quantity (examples: 2, '500m', '10G', '4Gi')")
    if isinstance(value, str) and not _QUANTITY.match(value):
        raise ValueError(f"{shown(value)} is not a quantity (examples: 2, '500m', '10G', '4Gi')")
    from kubernetes.utils.quantity import parse_quantity as kubernetes_parse_quantity

    number = float(kubernetes_parse_quantity(value))
    if not math.isfinite(number):
        raise ValueError(f"{shown(value)} is not a finite quantity")
    return number


def is_quantity(value: Any) -> bool:
    """Whether `value` is a non-negative Kubernetes quantity."""
    try:
        return parse_quantity(value) >= 0
    except ValueError:
        return False


def gpu_key(resources: Mapping[str, Any]) -> str | None:
    """The key under which `resources` asks for GPUs ('gpu' or 'nvidia.com/gpu'), None when it
    asks for none."""
    return next((key for key in GPU_KEYS if key in resources), None)


def gpus_per_worker(resources: Mapping[str, Any]) -> int:
    """The GPUs one worker asks for in `resources` (0 when none).

    Raises:
        ValueError: the GPU count is not a quantity.
    """
    key = gpu_key(resources)
    return 0 if key is None else int(parse_quantity(resources[key]))


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1
