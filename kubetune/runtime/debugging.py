"""Debug hooks switched on by environment variables, used by the distributed tests.

KUBETUNE_TRACE_SAMPLES=DIR   each rank appends the dataset index of every train sample it
                             loads to DIR/rank-<RANK>.txt
KUBETUNE_DEBUG_STEP_DELAY=S  sleeps S seconds after every optimizer step (to stop a run midway)
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import torch
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

TRACE_ENV = "KUBETUNE_TRACE_SAMPLES"
STEP_DELAY_ENV = "KUBETUNE_DEBUG_STEP_DELAY"


class TracedDataset(torch.utils.data.Dataset):
    """A dataset view that records which indices this rank loads."""

    def __init__(self, dataset: Any, folder: Path) -> None:
        self.dataset = dataset
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"rank-{os.environ.get('RANK', '0')}.txt"

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Any:
        with self.path.open("a") as f:
            f.write(f"{index}\n")
        return self.dataset[index]


def traced(dataset: Any) -> Any:
    """`dataset`, recording the indices each rank loads when KUBETUNE_TRACE_SAMPLES names a folder."""
    folder = os.environ.get(TRACE_ENV)
    return TracedDataset(dataset, Path(folder)) if folder else dataset


class StepDelay(TrainerCallback):
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def on_step_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        time.sleep(self.seconds)


def debug_callbacks() -> list[TrainerCallback]:
    """The callbacks the debug variables ask for (a delay after every step)."""
    delay = os.environ.get(STEP_DELAY_ENV)
    return [StepDelay(float(delay))] if delay else []
