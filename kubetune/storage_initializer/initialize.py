"""The storage initializer's orchestration: fetch model and dataset into a job workspace.

`initialize(spec, workspace)` fills `workspace/model` (or `model.path` for a local folder used
in place) and `workspace/dataset` (a DatasetDict saved with `save_to_disk`), then writes the
completion marker last, atomically. Everything is fetched into a staging folder inside the
workspace and renamed into place, so a killed run leaves no marker and no half-filled
`model/` or `dataset/` that a marker vouches for. A rerun whose spec fingerprint matches the
marker returns at once, without touching the network; one with a different spec removes the
marker first and replaces the contents.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubetune import __version__
from kubetune import workspace as ws
from kubetune.training.spec import JobSpec

MARKER_FORMAT = 1
STAGING_PREFIX = ".kubetune-tmp-"
LOCK_FILE = ".kubetune-initialize.lock"

log = logging.getLogger("kubetune.storage_initializer")


def fingerprint(spec: JobSpec) -> str:
    """A digest of what the initializer fetches: the spec's model and dataset sections."""
    payload = json.dumps(
        {"model": spec.model, "dataset": spec.dataset}, sort_keys=True, default=str
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def completed(spec: JobSpec, workspace: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The marker's content when `workspace` is fully initialized for this spec, else None."""
    workspace = Path(workspace)
    marker = ws.read_json(workspace / ws.MARKER_FILE)
    if not isinstance(marker, dict) or marker.get("fingerprint") != fingerprint(spec):
        return None
    if not ws.model_path(workspace).is_dir() or not (workspace / ws.DATASET_DIR).is_dir():
        return None
    return marker


def human_bytes(size: float) -> str:
    """'12.3 MB' style sizes (powers of 1024)."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


@contextlib.contextmanager
def _locked(workspace: Path) -> Iterator[None]:
    """Serialises initializers sharing a workspace (e.g. several pods on one volume)."""
    fd = os.open(workspace / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _set_aside(path: Path, staging: Path) -> None:
    """Moves `path` (file, link or folder) out of the way into `staging`, to be deleted with it."""
    if path.is_symlink() or path.exists():
        os.replace(path, staging / f"old-{path.name}")


def _write_text_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _fetch_into(
    spec: JobSpec, workspace: Path, staging: Path, env: Mapping[str, str]
) -> dict[str, Any]:
    from kubetune.storage_initializer.dataset_fetch import describe, fetch_dataset
    from kubetune.storage_initializer.errors import InitializerError, first_line
    from kubetune.storage_initializer.model_fetch import fetch_model

    start = time.monotonic()
    model = fetch_model(spec.model, spec.dataset, staging, env)
    log.info(
        "model %s: %d files, %s in %.1f s",
        model.source,
        model.files,
        human_bytes(model.bytes),
        model.seconds,
    )

    dataset_start = time.monotonic()
    dataset = fetch_dataset(spec.dataset, staging, env)
    try:
        dataset.data.save_to_disk(str(staging / ws.DATASET_DIR))
    except Exception as error:
        raise InitializerError(
            describe(spec.dataset), f"cannot save to the workspace: {first_line(error)}"
        ) from error
    dataset_seconds = time.monotonic() - dataset_start
    saved_bytes = _folder_bytes(staging / ws.DATASET_DIR)

    # Into place: dataset, then model; the marker comes last, in initialize().
    _set_aside(workspace / ws.DATASET_DIR, staging)
    os.replace(staging / ws.DATASET_DIR, workspace / ws.DATASET_DIR)
    if model.in_place:
        _set_aside(workspace / ws.MODEL_DIR, staging)
        _write_text_atomic(workspace / ws.MODEL_LINK_FILE, f"{model.folder}\n")
        model_location = str(model.folder)
    else:
        _set_aside(workspace / ws.MODEL_LINK_FILE, staging)
        _set_aside(workspace / ws.MODEL_DIR, staging)
        os.replace(model.folder, workspace / ws.MODEL_DIR)
        model_location = ws.MODEL_DIR

    splits = {name: split.num_rows for name, split in dataset.data.items()}
    return {
        "format": MARKER_FORMAT,
        "fingerprint": fingerprint(spec),
        "kubetune_version": __version__,
        "job": spec.name,
        "model": {
            "uri": model.source,
            "path": model_location,
            "in_place": model.in_place,
            "files": model.files,
            "bytes": model.bytes,
            "seconds": round(model.seconds, 3),
        },
        "dataset": {
            "kind": spec.dataset.get("kind"),
            "source": dataset.source,
            "splits": splits,
            "columns": list(dataset.data[ws.TRAIN_SPLIT].column_names),
            "downloaded_bytes": dataset.downloaded_bytes,
            "download_seconds": round(dataset.seconds, 3),
            "bytes": saved_bytes,
            "seconds": round(dataset_seconds, 3),
            **dataset.details,
        },
        "seconds": round(time.monotonic() - start, 3),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def initialize(
    spec: JobSpec, workspace: Path, env: Mapping[str, str] = os.environ
) -> dict[str, Any]:
    """Fetches `spec.model` and `spec.dataset` into `workspace`; returns the marker's summary.

    Secrets are read from `env` (the variables named in kubetune.training.spec). The summary has
    `reused: True` when the workspace was already initialized for this spec. Raises
    `InitializerError` (one line: what was asked for, what went wrong) on failures users can fix.
    """
    workspace = Path(workspace)
    workspace.mkdir(parents=True, exist_ok=True)
    done = completed(spec, workspace)
    if done is not None:
        log.info("workspace %s is already initialized for this spec; nothing to fetch", workspace)
        return {**done, "reused": True}
    with _locked(workspace):
        done = completed(spec, workspace)  # another initializer may have finished meanwhile
        if done is not None:
            log.info("workspace %s was initialized by another process; nothing to fetch", workspace)
            return {**done, "reused": True}
        (workspace / ws.MARKER_FILE).unlink(missing_ok=True)
        for stale in workspace.glob(STAGING_PREFIX + "*"):
            log.info("removing %s left by an interrupted run", stale.name)
            shutil.rmtree(stale, ignore_errors=True)
        staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=workspace))
        try:
            summary = _fetch_into(spec, workspace, staging, env)
            ws.write_json_atomic(workspace / ws.MARKER_FILE, summary)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    data = summary["dataset"]
    rows = ", ".join(f"{name} {count} rows" for name, count in data["splits"].items())
    log.info(
        "initialized %s: model %s (%s), dataset %s (%s; %s downloaded, %s saved) in %.1f s",
        workspace,
        summary["model"]["uri"],
        human_bytes(summary["model"]["bytes"]),
        data["source"],
        rows,
        human_bytes(data["downloaded_bytes"]),
        human_bytes(data["bytes"]),
        summary["seconds"],
    )
    return {**summary, "reused": False}
