"""The job workspace: every file and folder the storage initializer, the runtime and the
backends share, the rule for where outputs go, and the one way JSON files are written and read.

```
WORKSPACE/                    mounted at MOUNT_PATH (/workspace) in a Kubernetes pod
  model/                      the model files (or MODEL_LINK_FILE naming a folder used in place)
  model.path                  MODEL_LINK_FILE: the local model folder used in place of model/
  dataset/                    a DatasetDict saved with save_to_disk: 'train' and optionally 'eval'
  datasets/<n>/               for a dataset mix: each dataset as fetched (n = 0, 1, ...; dataset/
                              holds the mix)
  .kubetune-initialized       the storage initializer's completion marker (JSON), written last
  .kubetune-initialize.lock   held by the storage initializer while it fetches
  .kubetune-tmp-*/            the storage initializer's staging folders (removed when it ends)
  outputs/<output_dir>/       checkpoints, final model, metrics.json, loss_curve.png (OUTPUT_*)
  progress.json               training progress, written by rank 0 at every logging step
  history.jsonl               every logged record, one JSON object a line, appended by rank 0
  .kubetune-cache/            the runtime's preprocessed data, once per node (never in dataset/)
                              (model/, model.path, dataset/, the marker and the cache may be
                              links to another workspace's: see `link_shared`)
  .kubetune-packages/         a local function job's pip packages (create_job(train_func=...))
```
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MODEL_DIR = "model"
MODEL_LINK_FILE = "model.path"
DATASET_DIR = "dataset"
DATASETS_DIR = "datasets"
MARKER_FILE = ".kubetune-initialized"
LOCK_FILE = ".kubetune-initialize.lock"
STAGING_PREFIX = ".kubetune-tmp-"
OUTPUTS_DIR = "outputs"
PROGRESS_FILE = "progress.json"
HISTORY_FILE = "history.jsonl"
CACHE_DIR = ".kubetune-cache"
PACKAGES_DIR = ".kubetune-packages"

# What workspaces of the same model and dataset can share (the trials of a search): the fetched
# model and dataset, the storage initializer's marker and the preprocessing cache.
SHARED_ENTRIES = (MODEL_DIR, MODEL_LINK_FILE, DATASET_DIR, MARKER_FILE, CACHE_DIR)

# The splits of the saved dataset.
TRAIN_SPLIT = "train"
EVAL_SPLIT = "eval"

# Where the workspace is mounted in a Kubernetes pod (Kubeflow's INIT_CONTAINER_MOUNT_PATH).
MOUNT_PATH = "/workspace"
# The output folder inside outputs/ when TrainingArguments name none.
DEFAULT_OUTPUT_DIR = "trainer_output"

# What a finished run leaves in its output directory.
OUTPUT_MODEL_DIR = "model"
OUTPUT_MERGED_MODEL_DIR = "merged_model"
METRICS_FILE = "metrics.json"
LOSS_CURVE_FILE = "loss_curve.png"
# In an adapter folder: PEFT's config, and the classifier's label names in id order.
ADAPTER_CONFIG_FILE = "adapter_config.json"
LABELS_FILE = "labels.json"


class Under:
    """A path of a fixed name under the `root` of the object it is read from (a typed property)."""

    def __init__(self, name: str, doc: str) -> None:
        self.name = name
        self.__doc__ = doc

    def __get__(self, instance: Workspace | OutputDir, owner: type) -> Path:
        return instance.root / self.name


@dataclass(frozen=True)
class Workspace:
    """The paths of one job workspace."""

    root: Path

    model_dir = Under(MODEL_DIR, "model/: the fetched model files.")
    model_link = Under(
        MODEL_LINK_FILE, "model.path: the local model folder used in place of model/."
    )
    dataset_dir = Under(DATASET_DIR, "dataset/: the saved DatasetDict.")
    datasets_dir = Under(DATASETS_DIR, "datasets/: each dataset of a mix, in a folder <n>/.")
    marker = Under(MARKER_FILE, "The storage initializer's completion marker.")
    lock = Under(LOCK_FILE, "The lock the storage initializer holds while it fetches.")
    progress = Under(PROGRESS_FILE, "progress.json: rank 0's latest ProgressRecord.")
    history = Under(HISTORY_FILE, "history.jsonl: every HistoryRecord, one a line.")
    cache_dir = Under(CACHE_DIR, "The runtime's preprocessed data (never inside dataset/).")
    packages_dir = Under(PACKAGES_DIR, "A local function job's pip packages.")

    def model_path(self) -> Path:
        """The folder to load the model from: model/, or the folder MODEL_LINK_FILE names."""
        if self.model_link.is_file():
            return Path(self.model_link.read_text().strip())
        return self.model_dir

    def output_path(self, output_dir: str | None) -> Path:
        """Where training outputs go for `TrainingArguments.output_dir` (see `output_path`)."""
        return output_path(self.root, output_dir)


@dataclass(frozen=True)
class OutputDir:
    """The paths of what a finished run leaves in its output directory."""

    root: Path

    model = Under(
        OUTPUT_MODEL_DIR, "The final model (the adapter, for LoRA) with its tokenizer or processor."
    )
    merged_model = Under(
        OUTPUT_MERGED_MODEL_DIR, "The LoRA adapter merged into its base model (merge_adapter=True)."
    )
    metrics = Under(METRICS_FILE, "metrics.json: the final metrics and the job's facts.")
    loss_curve = Under(LOSS_CURVE_FILE, "loss_curve.png: train (and eval) loss against the step.")


def output_path(workspace: str | os.PathLike[str], output_dir: str | None) -> Path:
    """Where training outputs go: a relative `output_dir` inside the workspace's outputs/; an
    absolute one under MOUNT_PATH at that place in the workspace (as in a pod, where the
    workspace is mounted there), MOUNT_PATH itself meaning outputs/ (so that the outputs do not
    overwrite the fetched model/ and dataset/); any other absolute one as given."""
    if output_dir and os.path.isabs(output_dir):
        inside = os.path.relpath(os.path.normpath(output_dir), MOUNT_PATH)
        if inside == ".":
            return Path(workspace) / OUTPUTS_DIR
        if inside != os.pardir and not inside.startswith(os.pardir + os.sep):
            return Path(workspace) / inside
        return Path(output_dir)
    return Path(workspace) / OUTPUTS_DIR / (output_dir or DEFAULT_OUTPUT_DIR)


def link_shared(workspace: str | os.PathLike[str], shared: str | os.PathLike[str]) -> None:
    """Makes `workspace` use `shared`'s model, dataset, initializer marker and preprocessing
    cache, through relative symbolic links. A link may point at what is not there yet (another
    process's storage initializer fetches it into `shared`); the cache folder is created there.
    Entries `workspace` already has stay as they are."""
    workspace, shared = Path(workspace), Path(shared)
    (shared / CACHE_DIR).mkdir(parents=True, exist_ok=True)
    for name in SHARED_ENTRIES:
        link = workspace / name
        if link.is_symlink() or link.exists():
            continue
        try:
            link.symlink_to(os.path.relpath(shared / name, workspace))
        except FileExistsError:  # another process of the same workspace made it meanwhile
            continue


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Writes `text` so that readers see the old content or the new, never a partial file
    (mode 0644; the folder is created when missing).

    Raises:
        OSError: the file cannot be written (nothing is left behind).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: str | os.PathLike[str], data: Any) -> None:
    """Writes `data` as JSON (sorted keys, indented) with `write_text_atomic`.

    Raises:
        OSError: the file cannot be written.
    """
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True, default=str))


def read_json(path: str | os.PathLike[str]) -> Any | None:
    """The JSON content of a file; None when it is missing, half-written or not JSON text.

    Raises:
        OSError: the file exists but cannot be read (permissions, I/O).
    """
    try:
        return json.loads(Path(path).read_text())
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
        return None
