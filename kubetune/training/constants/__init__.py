"""Kubeflow Training V1's constants, under the names its examples use.

Both `from kubetune.training import constants` and
`from kubetune.training.constants import constants` give these names.
"""

from __future__ import annotations

from typing import Any

from kubetune.training.constants import constants as constants
from kubetune.training.constants.constants import *  # noqa: F403
from kubetune.training.constants.constants import __all__ as _names


def __getattr__(name: str) -> Any:
    # The names that need the Kubernetes client or read the environment resolve on first use.
    return getattr(constants, name)


__all__ = ["constants", *_names]
