"""kubetune.katib: Katib's Python SDK (`kubeflow.katib`) with the prefix swapped.

`KatibClient`, `search` (`double`, `int`, `categorical`), `TrainerResources`, `report_metrics`
and Katib's model classes (`V1beta1Experiment`, ...) are imported on first use, so importing
this package stays fast (Katib's own package imports the Kubernetes client, gRPC and protobuf).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "KatibClient": ("kubetune.katib.api.katib_client", "KatibClient"),
    "TrainerResources": ("kubetune.katib.types.types", "TrainerResources"),
    "report_metrics": ("kubetune.katib.api.report_metrics", "report_metrics"),
    "ExperimentReport": ("kubetune.katib.report", "ExperimentReport"),
    "TrialReport": ("kubetune.katib.report", "TrialReport"),
}
_MODULES = {
    "search": "kubetune.katib.api.search",
    "constants": "kubetune.katib.constants.constants",
}

__all__ = [*_EXPORTS, *_MODULES]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        module, attribute = _EXPORTS[name]
        return getattr(importlib.import_module(module), attribute)
    if name in _MODULES:
        return importlib.import_module(_MODULES[name])
    if name.startswith("V1beta1"):
        models = importlib.import_module("kubeflow.katib.models")
        if hasattr(models, name):
            return getattr(models, name)
    raise AttributeError(f"module 'kubetune.katib' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
