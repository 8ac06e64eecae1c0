"""What a finished run leaves in its output directory: model, merged model, metrics, loss curve."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from kubetune.workspace import write_json_atomic

MODEL_DIR = "model"
MERGED_MODEL_DIR = "merged_model"
METRICS_FILE = "metrics.json"
LOSS_CURVE_FILE = "loss_curve.png"
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def latest_checkpoint(output_dir: Path) -> Path | None:
    """The checkpoint-N folder with the highest N that was completely written (has its trainer state)."""
    if not output_dir.is_dir():
        return None
    found = [
        (int(m.group(1)), p)
        for p in output_dir.iterdir()
        if (m := _CHECKPOINT.match(p.name)) and (p / "trainer_state.json").is_file()
    ]
    return max(found)[1] if found else None


def checkpoint_step(checkpoint: Path) -> int:
    match = _CHECKPOINT.match(checkpoint.name)
    return int(match.group(1)) if match else 0


def save_merged_model(model: Any, processor: Any, path: Path) -> None:
    """Merges LoRA weights into the base model and saves a plain transformers model."""
    merged = model.merge_and_unload()
    merged.save_pretrained(path)
    processor.save_pretrained(path)


def write_metrics(path: Path, metrics: dict[str, Any]) -> None:
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
