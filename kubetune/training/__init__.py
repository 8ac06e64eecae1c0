"""Client side: TrainingClient, the Backend interface and its two backends (the JobSpec they
run is the contract's, kubetune.contract.spec).

`TrainingClient` and Kubeflow's model classes (`KubeflowOrgV1PyTorchJob`, ...) are imported on
first use, so importing this package stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any


def __getattr__(name: str) -> Any:
    if name == "TrainingClient":
        from kubetune.training.api.training_client import TrainingClient

        return TrainingClient
    if name.startswith("KubeflowOrgV1"):
        models = importlib.import_module("kubeflow.training.models")
        if hasattr(models, name):
            return getattr(models, name)
    raise AttributeError(f"module 'kubetune.training' has no attribute {name!r}")


__all__ = ["TrainingClient"]
