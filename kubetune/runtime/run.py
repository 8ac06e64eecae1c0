"""The training run of one worker process, as plain steps.

1. read the job spec; size the thread pool; wait for the storage initializer's marker; choose
   the checkpoint to resume from (this job's latest, else the one the user asked for)
2. load the dataset splits and resolve the task's columns
3. build TrainingArguments (outputs inside the workspace, distributed settings per task)
4. seed; load processor and model (reports on the main process only); wrap with LoRA unless
   full fine-tuning (a TRL method's trainer wraps the model itself)
5. preprocess once per node; build the Trainer, or the TRL method's trainer (batches of similar
   lengths unless the user chose an order; checkpoints marked with the job's uid)
6. train (evaluating the untrained model first if asked)
7. evaluate, unless the last evaluation was of the final model; rank 0 saves the model (an
   adapter names the user's base model), metrics, loss curve, progress "done"
"""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
from typing import Any

from kubetune.contract import checkpoints, layout
from kubetune.contract.layout import OutputDir, Workspace
from kubetune.contract.records import PROGRESS_LOG_ENV, ProgressStatus
from kubetune.contract.secrets import training_argument_secrets
from kubetune.contract.spec import JobSpec
from kubetune.contract.uris import SourceKind
from kubetune.runtime import debugging, outputs
from kubetune.runtime.arguments import rebuild_lora_config, rebuild_training_arguments
from kubetune.runtime.errors import TrainerError
from kubetune.runtime.lora import prepare_lora
from kubetune.runtime.marking import CheckpointMarker
from kubetune.runtime.methods import build_trl_trainer, last_logged_metrics
from kubetune.runtime.progress import (
    ProgressReporter,
    print_on_main_process_only,
    reports_on_main_process_only,
)
from kubetune.runtime.startup import configure_threads, wait_for_marker
from kubetune.runtime.tasks import Task, TaskSettings, task_for
from kubetune.runtime.tasks.base import MapCache

log = logging.getLogger("kubetune.runtime")


def run(spec_path: Path, root: Path, marker_timeout: float) -> dict[str, Any]:
    """Trains the job in `spec_path` on the workspace `root`.

    Returns:
        The final metrics (as metrics.json holds them, less the job's facts).

    Raises:
        TrainerError: a problem the user can fix (a bad spec, column, argument, checkpoint),
            reported as one line.
    """
    spec = read_spec(spec_path)
    trainer_spec = spec.fine_tuning[2]
    paths = Workspace(root)
    configure_threads()
    wait_for_marker(root, marker_timeout)
    output_dir = spec.output_path(root)
    checkpoint = resume_point(spec, output_dir)
    resumed = checkpoints.saved_state(checkpoint) if checkpoint else {}
    restarted_from = int(resumed.get("global_step") or 0) if checkpoint else None

    task = task_for(spec.transformer_type, task_settings(spec))
    train_split, eval_split = load_splits(root)
    task.resolve_columns(list(train_split.column_names))

    # The untrained model is evaluated inside train() (eval_on_start): a Trainer.evaluate()
    # before train() marks the model as prepared, and train() then skips the DDP wrapper,
    # so every rank would train its own copy without exchanging gradients.
    evaluate_first = bool(
        trainer_spec.evaluate_before_training and eval_split is not None and not checkpoint
    )
    args = training_arguments(
        spec, task, output_dir, has_eval=eval_split is not None, evaluate_first=evaluate_first
    )

    # Seeded before loading: new heads and LoRA weights start the same in every run and rank.
    seed_everything(args)
    model_dir = paths.model_path()
    with reports_on_main_process_only(args.process_index == 0):
        processor = task.load_processor(model_dir)
        model = task.load_model(model_dir, **task.model_kwargs(train_split, eval_split))
        model, peft_config = prepare_lora(
            model, rebuild_lora_config(trainer_spec), task, trainer_spec.method
        )

    with args.main_process_first(local=True, desc="preprocessing"):
        prepared = task.prepare(
            train_split, eval_split, processor, model, MapCache(paths.cache_dir, cache_key(spec))
        )

    progress = ProgressReporter(
        paths,
        restarted_from,
        enabled=args.process_index == 0,
        print_records=os.environ.get(PROGRESS_LOG_ENV) == "1",
    )
    trainer = build_trainer(args, model, processor, task, prepared, progress, spec, peft_config)
    if checkpoint:
        log.info("resuming from %s", checkpoint)

    result = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    metrics: dict[str, Any] = dict(result.metrics)
    if restarted_from is not None:
        metrics["train_loss"] = train_loss_over_run(
            resumed.get("log_history") or [],
            restarted_from,
            metrics.get("train_loss"),
            trainer.state.global_step - restarted_from,
        )
    if evaluate_first:
        before = metrics_before_training(trainer.state.log_history)
        exclude_from_train_time(metrics, before.get("eval_before_runtime", 0.0))
        metrics.update(before)
        metrics.update(task.derived_metrics(before, "eval_before"))
    metrics.update(task.derived_metrics(metrics, "train"))
    if trainer_spec.method is not None:
        metrics.update(last_logged_metrics(trainer.state.log_history))
    if prepared.train_tokens is not None and metrics.get("train_runtime"):
        epochs = (trainer.state.epoch or 0.0) - float(resumed.get("epoch") or 0.0)
        metrics["train_tokens_per_second"] = round(
            prepared.train_tokens * epochs / metrics["train_runtime"], 3
        )

    if prepared.eval is not None:
        eval_metrics = final_evaluation(trainer.state.log_history, trainer.state.global_step)
        if eval_metrics is None or args.load_best_model_at_end:
            progress.report(ProgressStatus.EVALUATING)
            eval_metrics = trainer.evaluate()
        metrics.update(eval_metrics)
        metrics.update(task.derived_metrics(eval_metrics, "eval"))

    progress.report(ProgressStatus.SAVING)
    save_outputs(
        trainer, spec, task, processor, output_dir, metrics, restarted_from, train_split, eval_split
    )
    progress.report(ProgressStatus.DONE)
    return metrics


def resume_point(spec: JobSpec, output_dir: Path) -> Path | None:
    """The checkpoint this run resumes from (see `checkpoints.resume_point`), None to start fresh.

    Raises:
        TrainerError: the asked checkpoint is missing, or another job's lie in the way.
    """
    asked = spec.fine_tuning[2].resume_from_checkpoint
    try:
        return checkpoints.resume_point(output_dir, spec.uid, asked)
    except ValueError as e:
        raise TrainerError(str(e)) from e


def base_model(spec: JobSpec) -> tuple[str, str | None]:
    """The model as the user named it (Hub id, local folder, S3 URI) and its revision: what a
    saved adapter loads its base from once the job's workspace is gone."""
    model = spec.fine_tuning[0]
    source = model.source
    name = source.location if source.kind in (SourceKind.HF, SourceKind.LOCAL) else model.uri
    return name, model.hub_revision


def read_spec(path: Path) -> JobSpec:
    """The job spec in `path` (its structure checked; the rules ran when it was submitted).

    Raises:
        TrainerError: the file is missing, or holds no valid spec of a fine-tuning job.
    """
    try:
        spec = JobSpec.from_json(path.read_text())
    except FileNotFoundError as e:
        raise TrainerError(f"--spec {path}: no such file") from e
    except ValueError as e:
        raise TrainerError(f"--spec {path}: not a valid job spec: {e}") from e
    if spec.model is None or spec.dataset is None or spec.trainer is None:
        raise TrainerError(
            f"--spec {path}: job {spec.name} has no model, dataset and trainer to fine-tune "
            "(a job of create_job(train_func=...) runs its own program)"
        )
    return spec


def task_settings(spec: JobSpec) -> TaskSettings:
    """The task's settings from the spec's trainer and model sections."""
    model, _, trainer = spec.fine_tuning
    return TaskSettings(
        columns=dict(trainer.columns or {}),
        max_length=trainer.max_length,
        packing=trainer.packing,
        num_labels=model.num_labels,
        method=trainer.method,
        data_format=trainer.data_format,
        chat_template=trainer.chat_template,
        loss_on=trainer.loss_on,
    )


def load_splits(root: Path) -> tuple[Any, Any | None]:
    """The train split and the eval split (None when absent) of the workspace dataset."""
    from datasets import DatasetDict, load_from_disk

    path = Workspace(root).dataset_dir
    try:
        data = load_from_disk(str(path))
    except FileNotFoundError as e:
        raise TrainerError(
            f"no dataset at {path}: the storage initializer saves one there ({e})"
        ) from e
    if not isinstance(data, DatasetDict):
        return data, None
    if layout.TRAIN_SPLIT not in data:
        raise TrainerError(
            f"dataset {path}: has no {layout.TRAIN_SPLIT!r} split; it has {sorted(data)}"
        )
    return data[layout.TRAIN_SPLIT], data.get(layout.EVAL_SPLIT)


def training_arguments(
    spec: JobSpec, task: Task, output_dir: Path, has_eval: bool, evaluate_first: bool = False
) -> Any:
    """The user's TrainingArguments with the output directory and distributed settings filled in.

    Raises:
        TrainerError: they ask for evaluation without an eval split, or transformers refuses them.
    """
    trainer = spec.fine_tuning[2]
    eval_strategy = trainer.eval_strategy
    if not has_eval and eval_strategy != "no":
        raise TrainerError(
            f"training_arguments.eval_strategy={eval_strategy!r}: needs an eval split, and the dataset has "
            "only a train split; set eval_strategy='no' or give the dataset an eval split"
        )
    overrides: dict[str, Any] = {
        "output_dir": str(output_dir),
        # Each task hands over exactly the model's inputs (images are transformed on the fly).
        "remove_unused_columns": False,
        # Credentials (hub_token) are not in the spec: they arrive as secret variables.
        **training_argument_secrets(os.environ),
    }
    if trainer.method is None:
        # Sample-level losses are already means over the batch: averaging "tokens" across
        # devices would scale loss and gradients by the world size. (TRL's trainers compute
        # their losses themselves.)
        overrides["average_tokens_across_devices"] = task.token_level_loss
    if trainer.uses_lora:
        overrides["ddp_find_unused_parameters"] = False
    if not _has_accelerator():
        # Without use_cpu the Trainer stays NOT_PARALLEL on a CPU-only machine even under
        # torchrun: every rank would train on all the data alone, with its own weights.
        overrides["use_cpu"] = True
    if task.prediction_loss_only:
        overrides["prediction_loss_only"] = True
    if trainer.packing:
        # With a cache, transformers does not look for packed samples in the position_ids.
        overrides["use_cache"] = False
    if evaluate_first:
        overrides["eval_on_start"] = True
    try:
        return rebuild_training_arguments(trainer, **overrides)
    except (ValueError, TypeError) as e:
        raise TrainerError(f"training_arguments: {e}") from e


def seed_everything(args: Any) -> None:
    """Seeds Python, NumPy and torch from `args.seed` (deterministic kernels with full_determinism)."""
    from transformers import enable_full_determinism, set_seed

    if args.full_determinism:
        enable_full_determinism(args.seed)
    else:
        set_seed(args.seed)


def metrics_before_training(log_history: list[dict[str, Any]]) -> dict[str, Any]:
    """The evaluation of the untrained model (eval_on_start, logged at step 0), as eval_before_*."""
    for entry in log_history:
        if entry.get("step") == 0 and "eval_loss" in entry:
            return {
                f"eval_before_{key.removeprefix('eval_')}": value
                for key, value in entry.items()
                if key.startswith("eval_")
            }
    return {}


def final_evaluation(log_history: list[dict[str, Any]], global_step: int) -> dict[str, Any] | None:
    """The eval_* figures of an evaluation logged at the last step (of the final model), or None."""
    for entry in reversed(log_history):
        if "eval_loss" in entry and entry.get("step") == global_step:
            return {key: value for key, value in entry.items() if key.startswith("eval_")}
    return None


def train_loss_over_run(
    history_before: list[dict[str, Any]],
    resumed_step: int,
    loss_since: float | None,
    steps_since: int,
) -> float | None:
    """The mean train loss per step over a whole run that resumed at `resumed_step`.

    The Trainer's train_loss covers only the steps since the resume (0.0 when none were
    left); the steps before come from the losses logged in the checkpoint's history.
    """
    total, steps, last_logged = 0.0, 0, 0
    for entry in history_before:
        step = entry.get("step")
        if "loss" in entry and isinstance(step, int) and last_logged < step <= resumed_step:
            total += float(entry["loss"]) * (step - last_logged)
            steps += step - last_logged
            last_logged = step
    if steps_since > 0 and loss_since is not None:
        total += loss_since * steps_since
        steps += steps_since
    return total / steps if steps else None


def exclude_from_train_time(metrics: dict[str, Any], seconds: float) -> None:
    """Takes the evaluation run inside train() out of its runtime and rates."""
    runtime = metrics.get("train_runtime")
    if not runtime or not seconds or seconds >= runtime:
        return
    factor = runtime / (runtime - seconds)
    metrics["train_runtime"] = round(runtime - seconds, 4)
    for key in ("train_samples_per_second", "train_steps_per_second"):
        if metrics.get(key):
            metrics[key] = round(metrics[key] * factor, 3)


def _has_accelerator() -> bool:
    import torch

    mps = getattr(torch.backends, "mps", None)
    xpu = getattr(torch, "xpu", None)
    return bool(
        torch.cuda.is_available()
        or (mps is not None and mps.is_available())
        or (xpu is not None and xpu.is_available())
    )


def cache_key(spec: JobSpec) -> str:
    """Names the preprocessing cache after everything that changes the preprocessed data."""
    import hashlib

    trainer = spec.fine_tuning[2]
    settings = {
        "type": spec.transformer_type,
        "model": spec.to_dict()["model"],
        "columns": trainer.columns,
        "max_length": trainer.max_length,
        "packing": trainer.packing,
        "method": trainer.method,
        "data_format": trainer.data_format,
        "chat_template": trainer.chat_template,
        "loss_on": trainer.loss_on,
    }
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[
        :16
    ]
    return f"{spec.transformer_type}-{digest}"


def build_trainer(
    args: Any,
    model: Any,
    processor: Any,
    task: Task,
    prepared: Any,
    progress: ProgressReporter,
    spec: JobSpec,
    peft_config: Any = None,
) -> Any:
    """A Trainer over the prepared splits, length-grouped batches unless turned off; or the
    trainer of the job's TRL method, which wraps the model with `peft_config`."""
    from transformers import Trainer

    from kubetune.runtime import sampling

    callbacks = [progress, *marker(spec), *debugging.debug_callbacks()]
    method = spec.fine_tuning[2].method
    if method is not None:
        trainer = build_trl_trainer(
            method, args, model, processor, prepared, peft_config, callbacks
        )
        print_on_main_process_only(trainer)
        return trainer
    extra: dict[str, Any] = {}
    trainer_class: type = Trainer
    if sampling.groups_by_length(spec.fine_tuning[2], prepared.train_lengths):
        trainer_class = sampling.LengthGroupedTrainer
        extra["train_lengths"] = prepared.train_lengths
    if trainer_class is not Trainer and args.process_index == 0:
        log.info(
            "train order: each step's batches hold samples of similar length (less padding); "
            "length_grouping=False turns this off"
        )
    trainer = trainer_class(
        **extra,
        model=model,
        args=args,
        train_dataset=debugging.traced(prepared.train),
        eval_dataset=prepared.eval,
        data_collator=prepared.collator,
        processing_class=processor,
        compute_metrics=prepared.compute_metrics,
        preprocess_logits_for_metrics=prepared.preprocess_logits_for_metrics,
        compute_loss_func=task.loss_function(),
        callbacks=callbacks,
    )
    print_on_main_process_only(trainer)
    return trainer


def marker(spec: JobSpec) -> list[CheckpointMarker]:
    """The callback marking checkpoints with the job's uid (none for a spec without one)."""
    return [CheckpointMarker(spec.uid, f"{spec.namespace}/{spec.name}")] if spec.uid else []


def save_outputs(
    trainer: Any,
    spec: JobSpec,
    task: Task,
    processor: Any,
    output_dir: Path,
    metrics: dict[str, Any],
    restarted_from: int | None,
    train_split: Any,
    eval_split: Any | None,
) -> None:
    """The final model (adapter for LoRA) with its processor, the merged model, metrics and plots."""
    saved = OutputDir(output_dir)
    trainer_spec = spec.fine_tuning[2]
    trainer.save_model(str(saved.model))
    trainer.save_state()
    if not trainer.is_world_process_zero():
        return
    processor.save_pretrained(saved.model)
    labels = getattr(task, "labels", None)
    if trainer_spec.uses_lora:
        outputs.record_base_model(saved.model, *base_model(spec))
        if labels is not None:
            outputs.write_labels(saved.model, labels.names)
        if trainer_spec.merge_adapter:
            outputs.save_merged_model(trainer.model, processor, saved.merged_model)
    record = {
        **{k: _plain(v) for k, v in metrics.items()},
        "transformer_type": spec.transformer_type,
        "global_step": trainer.state.global_step,
        "train_samples": len(train_split),
        "eval_samples": len(eval_split) if eval_split is not None else 0,
        "restarted_from_step": restarted_from,
        "lora": trainer_spec.uses_lora,
        "labels": labels.names if labels is not None else None,
    }
    outputs.write_metrics(saved.metrics, record)
    outputs.plot_loss_curve(trainer.state.log_history, saved.loss_curve)
    outputs.make_readable(output_dir)


def _plain(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
