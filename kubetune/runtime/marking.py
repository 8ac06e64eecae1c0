"""The callback that marks every checkpoint with the identity of the job writing it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from kubetune.contract import checkpoints


class CheckpointMarker(TrainerCallback):
    """Writes the job's uid into each checkpoint folder (see `checkpoints.MARK_FILE`).

    Where the Trainer decides to save at the end of a step or epoch, the mark goes into the
    folder before the Trainer writes its state there, so a complete checkpoint is never
    without its mark; saves decided later (save_strategy='best') are marked right after.
    """

    def __init__(self, uid: str, job: str) -> None:
        self.uid = uid
        self.job = job

    def on_step_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if control.should_save:
            self._mark(args, state)

    def on_epoch_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if control.should_save:
            self._mark(args, state)

    def on_save(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        self._mark(args, state)

    def _mark(self, args: TrainingArguments, state: TrainerState) -> None:
        if args.should_save and args.output_dir:
            folder = checkpoints.folder(Path(args.output_dir), state.global_step)
            folder.mkdir(parents=True, exist_ok=True)
            checkpoints.mark(folder, self.uid, self.job)
