"""Client side: TrainingClient, JobSpec and the backends."""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "TrainingClient":
        from kubetune.training.client import TrainingClient

        return TrainingClient
    raise AttributeError(f"module 'kubetune.training' has no attribute {name!r}")


__all__ = ["TrainingClient"]
