"""Builds job workspaces directly (model folder, saved DatasetDict, marker) and runs the runtime
on them, as the storage initializer and the local backend would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubetune.contract import layout

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
ERROR_PREFIX = "kubetune.runtime: error: "


def build_workspace(
    root: Path,
    make_model: Callable[[Path], Any],
    train_rows: list[dict],
    eval_rows: list[dict] | None = None,
    features: Any = None,
) -> Path:
    """A workspace as the storage initializer leaves it: model/, dataset/ and the marker."""
    from datasets import Dataset, DatasetDict

    root.mkdir(parents=True, exist_ok=True)
    make_model(root / layout.MODEL_DIR)
    splits = {layout.TRAIN_SPLIT: Dataset.from_list(train_rows, features=features)}
    if eval_rows is not None:
        splits[layout.EVAL_SPLIT] = Dataset.from_list(eval_rows, features=features)
    DatasetDict(splits).save_to_disk(str(root / layout.DATASET_DIR))
    layout.write_json_atomic(root / layout.MARKER_FILE, {"model": "test", "dataset": "test"})
    return root


def job_spec(
    transformer_type: str,
    training: dict[str, Any],
    lora: dict[str, Any] | None = None,
    num_labels: int | None = None,
    **trainer: Any,
) -> dict[str, Any]:
    """JobSpec data as the client writes it (defaults for everything the trainer does not read)."""
    args = {
        "output_dir": "out",
        "report_to": "none",
        "disable_tqdm": True,
        "save_strategy": "no",
        "seed": 0,
        **training,
    }
    return {
        "name": "test-job",
        "uid": trainer.get("uid", "test-job-uid"),
        "model": {
            "uri": "/models/tiny",
            "transformer_type": transformer_type,
            "num_labels": num_labels,
            "revision": None,
        },
        "dataset": {"kind": "local", "path": "/data"},
        "trainer": {
            "training_arguments": args,
            "lora_config": lora,
            "max_length": trainer.get("max_length"),
            "columns": trainer.get("columns"),
            "packing": trainer.get("packing", False),
            "merge_adapter": trainer.get("merge_adapter", False),
            "evaluate_before_training": trainer.get("evaluate_before_training", False),
            "length_grouping": trainer.get("length_grouping", True),
            "method": trainer.get("method"),
            "data_format": trainer.get("data_format"),
            "chat_template": trainer.get("chat_template"),
            "loss_on": trainer.get("loss_on"),
        },
    }


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    output_dir: Path
    root: Path

    @property
    def metrics(self) -> dict[str, Any]:
        return json.loads((self.output_dir / "metrics.json").read_text())

    @property
    def log_history(self) -> list[dict[str, Any]]:
        return json.loads((self.output_dir / "trainer_state.json").read_text())["log_history"]

    @property
    def losses(self) -> list[float]:
        return [e["loss"] for e in self.log_history if "loss" in e]

    @property
    def error_line(self) -> str:
        return self.stderr.rstrip().splitlines()[-1] if self.stderr.strip() else ""

    def check(self) -> Run:
        assert self.returncode == 0, f"trainer failed ({self.returncode}):\n{self.stderr[-6000:]}"
        return self


def trainer_command(spec_file: Path, root: Path, nproc: int) -> list[str]:
    module = [
        "-m",
        "kubetune.runtime",
        "--spec",
        str(spec_file),
        "--workspace",
        str(root),
        "--marker-timeout",
        "30",
    ]
    if nproc == 0:
        return [sys.executable, *module]
    return [
        str(VENV_BIN / "torchrun"),
        "--standalone",
        f"--nproc-per-node={nproc}",
        "--max-restarts=0",
        *module,
    ]


def trainer_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS",)}
    env.update(
        PYTHONPATH=str(REPO),
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
        TRANSFORMERS_VERBOSITY="warning",
        OMP_NUM_THREADS="1",
        **(extra or {}),
    )
    return env


def run_trainer(
    root: Path,
    spec: dict[str, Any],
    nproc: int = 2,
    env: dict[str, str] | None = None,
    timeout: float = 300,
) -> Run:
    """Runs the trainer on `root`: under torchrun with `nproc` processes, or plain python for 0."""
    return start_trainer(root, spec, nproc, env).finish(timeout)


@dataclass
class Started:
    """A trainer run started by `start_trainer`, not waited for yet."""

    process: subprocess.Popen[str]
    output_dir: Path
    root: Path

    def finish(self, timeout: float = 300) -> Run:
        """Waits for the run (killing it after `timeout` seconds) and returns how it went."""
        try:
            stdout, stderr = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            stdout, stderr = self.process.communicate()
        return Run(self.process.returncode, stdout, stderr, self.output_dir, self.root)


def start_trainer(
    root: Path, spec: dict[str, Any], nproc: int = 2, env: dict[str, str] | None = None
) -> Started:
    """Starts the trainer on `root` as `run_trainer` runs it, without waiting for it."""
    spec_file = root / "jobspec.json"
    spec_file.write_text(json.dumps(spec))
    process = subprocess.Popen(
        trainer_command(spec_file, root, nproc),
        cwd=REPO,
        env=trainer_env(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    output_dir = layout.output_path(root, spec["trainer"]["training_arguments"]["output_dir"])
    return Started(process, output_dir, root)
