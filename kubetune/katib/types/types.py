"""Katib's `TrainerResources`: the shape of each trial when it is a PyTorchJob."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class TrainerResources:
    """Each trial as a distributed job: `num_workers` workers (torchrun's nnodes), each with
    `num_procs_per_worker` processes and `resources_per_worker` ({'cpu': 1, 'memory': '4G',
    'gpu': 1} or a `V1ResourceRequirements`), as `TrainingClient.train()` takes them.

    All three are required, as in Katib; `KatibClient.tune()` checks them.
    """

    num_workers: int
    num_procs_per_worker: int
    resources_per_worker: Any
