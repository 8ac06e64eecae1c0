"""What a finished run writes in its output directory (see `layout.OutputDir`): the model, the
merged model, metrics and the loss curve."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from kubetune.contract.layout import (
    ADAPTER_CONFIG_FILE,
    LABELS_FILE,
    read_json,
    write_json_atomic,
)


def record_base_model(adapter_dir: Path, name: str, revision: str | None) -> None:
    """Makes a saved adapter name the model the user gave as its base (PEFT records the folder
    it was loaded from: the job's workspace, which is gone once the job is deleted)."""
    path = adapter_dir / ADAPTER_CONFIG_FILE
    config = read_json(path)
    if not isinstance(config, dict):
        return
    config["base_model_name_or_path"] = name
    if revision is not None:
        config["revision"] = revision
    write_json_atomic(path, config)


def write_labels(adapter_dir: Path, names: list[str]) -> None:
    """The label names beside an adapter: a config.json there would make transformers take the
    folder for a full model, so they go in a file of their own (LABELS_FILE)."""
    write_json_atomic(adapter_dir / LABELS_FILE, names)


def save_merged_model(model: Any, processor: Any, path: Path) -> None:
    """Merges LoRA weights into the base model and saves a plain transformers model."""
    merged = model.merge_and_unload()
    merged.save_pretrained(path)
    processor.save_pretrained(path)


def write_metrics(path: Path, metrics: dict[str, Any]) -> None:
    """Writes the metrics record (metrics.json) atomically."""
    write_json_atomic(path, metrics)


def plot_loss_curve(log_history: list[dict[str, Any]], path: Path) -> bool:
    """Plots training (and eval) loss against the step as PNG; False when nothing was logged."""
    train = [(e["step"], e["loss"]) for e in log_history if "loss" in e and "step" in e]
    evals = [(e["step"], e["eval_loss"]) for e in log_history if "eval_loss" in e and "step" in e]
    if not train and not evals:
        return False
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    if train:
        ax.plot(*zip(*train, strict=True), label="train loss")
    if evals:
        ax.plot(*zip(*evals, strict=True), marker="o", label="eval loss")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def make_readable(root: Path) -> None:
    """Folders 0755 and files 0644 under `root` (safetensors writes 0600 by default)."""
    if not root.exists():
        return
    os.chmod(root, 0o755)
    for folder, dirs, files in os.walk(root):
        for name in dirs:
            _chmod(Path(folder) / name, 0o755)
        for name in files:
            _chmod(Path(folder) / name, 0o644)


def _chmod(path: Path, mode: int) -> None:
    try:
        if not path.is_symlink():
            os.chmod(path, mode)
    except FileNotFoundError:  # a temporary file that vanished meanwhile
        pass
