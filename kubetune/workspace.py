"""The job workspace layout shared by the storage initializer, the trainer and the backends.

```
WORKSPACE/
  model/                 the model files (or MODEL_LINK_FILE naming a folder used in place)
  dataset/               a DatasetDict saved with save_to_disk: 'train' and optionally 'eval'
  .kubetune-initialized  completion marker (JSON), written last by the storage initializer
  outputs/<output_dir>/  checkpoints, final model, metrics.json, loss_curve.png
  progress.json          training progress written by rank 0 at every logging step
                         (with PROGRESS_LOG_ENV=1 also printed as one log line, for backends
                         that cannot read the workspace)
  history.jsonl          every logged record (step, epoch, time, loss, learning_rate, eval_*),
                         one JSON object a line, appended by rank 0 (restarts append again)
  .kubetune-cache/       the trainer's preprocessed data, once per node (never inside dataset/)
                         (model/, model.path, dataset/, the marker and the cache may be links to
                         another workspace's: see `link_shared`)
  .kubetune-initialize.lock   held by the storage initializer while it fetches
```
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

MODEL_DIR = "model"
DATASET_DIR = "dataset"
MARKER_FILE = ".kubetune-initialized"
OUTPUTS_DIR = "outputs"
PROGRESS_FILE = "progress.json"
HISTORY_FILE = "history.jsonl"
# Where the workspace lies in a volume the client cannot read (Kubernetes), the backend sets
# this variable to "1" and rank 0 also prints each progress record as PROGRESS_LOG_PREFIX + JSON.
PROGRESS_LOG_ENV = "KUBETUNE_PROGRESS_LOG"
PROGRESS_LOG_PREFIX = "kubetune-progress "
# When a local model folder is used in place, model/ is not created; this file names the folder.
MODEL_LINK_FILE = "model.path"

TRAIN_SPLIT = "train"
EVAL_SPLIT = "eval"
# The trainer's preprocessed data (tokenised splits), cached once per node.
CACHE_DIR = ".kubetune-cache"
# What workspaces of the same model and dataset can share (the trials of a search): the fetched
# model and dataset, the storage initializer's marker and the preprocessing cache.
SHARED_ENTRIES = (MODEL_DIR, MODEL_LINK_FILE, DATASET_DIR, MARKER_FILE, CACHE_DIR)


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


def model_path(workspace: str | os.PathLike[str]) -> Path:
    """The folder to load the model from: model/ or the in-place folder named by MODEL_LINK_FILE."""
    workspace = Path(workspace)
    link = workspace / MODEL_LINK_FILE
    if link.is_file():
        return Path(link.read_text().strip())
    return workspace / MODEL_DIR


# Where the workspace is mounted in a Kubernetes pod (Kubeflow's INIT_CONTAINER_MOUNT_PATH).
MOUNT_PATH = "/workspace"


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
    return Path(workspace) / OUTPUTS_DIR / (output_dir or "trainer_output")


def write_json_atomic(path: str | os.PathLike[str], data: Any) -> None:
    """Writes JSON so readers see the old content or the new, never a partial file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2, sort_keys=True, default=str)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json(path: str | os.PathLike[str]) -> Any | None:
    """The JSON content of a file, or None when it is missing or half-written."""
    try:
        return json.loads(Path(path).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def progress_log_line(record: dict[str, Any]) -> str:
    """One log line carrying a progress record."""
    return PROGRESS_LOG_PREFIX + json.dumps(record, sort_keys=True, default=str)


def last_progress_in_log(text: str) -> dict[str, Any] | None:
    """The last progress record printed in `text` (a log), or None when it holds none."""
    for line in reversed(text.splitlines()):
        # A progress bar's carriage-return redraws may share the line.
        _, found, payload = line.rpartition(PROGRESS_LOG_PREFIX)
        if not found:
            continue
        try:
            record = json.loads(payload)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict):
            return record
    return None
