"""What the runtime reports while it runs: the progress file (workspace/progress.json) that
backends read, written by rank 0 (and, where the backend asks for it, also printed as one log line
per record), the history of logged values (workspace/history.jsonl, appended by rank 0), and the
logged values and load reports, printed once per job rather than once per process."""

from __future__ import annotations

import json
import math
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from transformers import (
    PrinterCallback,
    TrainerCallback,
    TrainerControl,
    TrainerState,
    TrainingArguments,
)

from kubetune.contract import layout
from kubetune.contract.layout import Workspace
from kubetune.contract.records import (
    HistoryRecord,
    ProgressRecord,
    ProgressStatus,
    progress_log_line,
)


class ProgressReporter(TrainerCallback):
    """Writes step, total steps, epoch, loss, learning rate, samples/s and ETA at every log, and
    appends each logged record to the workspace's history file; the progress record's `logged`
    holds the latest one (so a backend that reads only the printed records has it too)."""

    def __init__(
        self,
        workspace: Workspace,
        restarted_from_step: int | None,
        enabled: bool,
        print_records: bool = False,
    ) -> None:
        self.workspace = workspace
        self.enabled = enabled
        self.print_records = print_records
        self.record = ProgressRecord(restarted_from_step=restarted_from_step)
        self._started = time.monotonic()
        self._start_step = 0
        self._global_batch = 1

    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        self._started = time.monotonic()
        self._start_step = state.global_step
        self._global_batch = (
            args.per_device_train_batch_size * args.gradient_accumulation_steps * args.world_size
        )
        self._update(state)
        evaluating = args.eval_on_start and state.global_step == 0
        self.report(ProgressStatus.EVALUATING if evaluating else ProgressStatus.TRAINING)

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: dict[str, float] | None = None,
        **kwargs: Any,
    ) -> None:
        logs = logs or {}
        if "loss" in logs:
            self.record.loss = logs["loss"]
        if "learning_rate" in logs:
            self.record.learning_rate = logs["learning_rate"]
        self._update(state)
        if logs:
            self.record.logged = logged_record(state, logs)
            if self.enabled:
                with self.workspace.history.open("a") as history:
                    history.write(json.dumps(self.record.logged.to_dict()) + "\n")
        self.report(self.record.status)

    def on_step_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if control.should_evaluate:
            self._update(state)
            self.report(ProgressStatus.EVALUATING)

    def on_evaluate(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        self.record.status = ProgressStatus.TRAINING
        if state.global_step == self._start_step:  # eval_on_start: rates count from here
            self._started = time.monotonic()

    def _update(self, state: TrainerState) -> None:
        done = state.global_step - self._start_step
        elapsed = max(time.monotonic() - self._started, 1e-9)
        self.record.step = state.global_step
        self.record.total_steps = state.max_steps
        self.record.epoch = state.epoch or 0.0
        if done > 0:
            self.record.samples_per_second = round(done * self._global_batch / elapsed, 3)
            self.record.eta_seconds = round(
                max(state.max_steps - state.global_step, 0) * elapsed / done, 1
            )

    def report(self, status: ProgressStatus) -> None:
        """Writes the record now with `status` (rank 0 only; also printed when asked).

        Raises:
            OSError: the progress file cannot be written.
        """
        self.record.status = status
        if status == ProgressStatus.DONE:
            self.record.eta_seconds = 0.0
        self.record.updated_at = time.time()
        if self.enabled:
            data = self.record.to_dict()
            layout.write_json_atomic(self.workspace.progress, data)
            if self.print_records:
                print(progress_log_line(data), flush=True)


def logged_record(state: TrainerState, logs: dict[str, Any]) -> HistoryRecord:
    """One history line: step, epoch and time with every number the Trainer logged (loss,
    learning_rate, grad_norm, eval_*, ...); a value that is not finite becomes None."""
    values = {
        key: (value if math.isfinite(value) else None)
        for key, value in logs.items()
        if isinstance(value, int | float) and not isinstance(value, bool) and key != "epoch"
    }
    epoch = logs.get("epoch", state.epoch)
    return HistoryRecord(
        step=state.global_step,
        epoch=epoch if isinstance(epoch, int | float) else 0.0,
        time=round(time.time(), 3),
        values=values,
    )


class MainProcessPrinter(PrinterCallback):
    """Prints the logged values on the global main process only (with `disable_tqdm`):
    every node logs the same values, and transformers' printer would repeat them per node."""

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if state.is_world_process_zero:
            super().on_log(args, state, control, logs=logs, **kwargs)


def print_on_main_process_only(trainer: Any) -> None:
    """Swaps the Trainer's PrinterCallback, if it has one, for MainProcessPrinter."""
    if trainer.pop_callback(PrinterCallback) is not None:
        trainer.add_callback(MainProcessPrinter)


@contextmanager
def reports_on_main_process_only(is_main_process: bool) -> Iterator[None]:
    """Inside, a process other than the main one keeps quiet about what every rank would
    repeat: transformers' load report and progress bars, PEFT's and others' Python warnings.
    Errors still print."""
    if is_main_process:
        yield
        return
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
