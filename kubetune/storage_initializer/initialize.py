"""The storage initializer's orchestration: fetch model and dataset into a job workspace.

`initialize(spec, workspace)` fills `workspace/model` (or `model.path` for a local folder used
in place) and `workspace/dataset` (a DatasetDict saved with `save_to_disk`; for a dataset mix,
the mix, each of its datasets also saved as fetched in `workspace/datasets/<n>`), then writes the
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
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from kubetune import __version__
from kubetune.contract import layout
from kubetune.contract.layout import STAGING_PREFIX, Workspace
from kubetune.contract.records import DatasetFetched, InitializerMarker, ModelFetched
from kubetune.contract.spec import DatasetMixSpec, JobSpec, dataset_sources

if TYPE_CHECKING:
    from datasets import DatasetDict

log = logging.getLogger("kubetune.storage_initializer")


def fingerprint(spec: JobSpec) -> str:
    """A digest of what the initializer fetches: the spec's model and dataset sections."""
    data = spec.to_dict()
    payload = json.dumps(
        {"model": data["model"], "dataset": data["dataset"]}, sort_keys=True, default=str
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def completed(spec: JobSpec, workspace: str | os.PathLike[str]) -> InitializerMarker | None:
    """The marker when `workspace` is fully initialized for this spec, else None."""
    paths = Workspace(Path(workspace))
    try:
        marker = InitializerMarker.from_dict(layout.read_json(paths.marker))
    except ValueError:
        return None
    if marker.fingerprint != fingerprint(spec):
        return None
    if not paths.model_path().is_dir() or not paths.dataset_dir.is_dir():
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
    fd = os.open(Workspace(workspace).lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _set_aside(path: Path, staging: Path) -> None:
    """Moves `path` (file, link or folder) out of the way into `staging`, to be deleted with it."""
    if path.is_symlink() or path.exists():
        os.replace(path, staging / f"old-{path.name}")


def _fetch_into(
    spec: JobSpec, workspace: Path, staging: Path, env: Mapping[str, str]
) -> InitializerMarker:
    from kubetune.storage_initializer.dataset_fetch import fetch_dataset
    from kubetune.storage_initializer.mixing import fetch_mix
    from kubetune.storage_initializer.model_fetch import fetch_model

    model_spec, dataset_spec, _ = spec.fine_tuning
    paths = Workspace(workspace)
    start = time.monotonic()
    model = fetch_model(model_spec, dataset_spec, staging, env)
    log.info(
        "model %s: %d files, %s in %.1f s",
        model.source,
        model.files,
        human_bytes(model.bytes),
        model.seconds,
    )

    dataset_start = time.monotonic()
    if isinstance(dataset_spec, DatasetMixSpec):
        dataset = fetch_mix(dataset_spec, staging, env)
    else:
        dataset = fetch_dataset(dataset_spec, staging, env)
    saved = staging / layout.DATASET_DIR
    _save(dataset.data, saved, dataset_spec.describe())
    saved_parts = staging / layout.DATASETS_DIR
    sources = dataset_sources(dataset_spec)
    for i, part in enumerate(dataset.parts):
        _save(part.data, saved_parts / str(i), sources[i].describe())
    dataset_seconds = time.monotonic() - dataset_start
    saved_bytes = _folder_bytes(saved) + (_folder_bytes(saved_parts) if dataset.parts else 0)

    # Into place: dataset (and a mix's datasets), then model; the marker comes last, in
    # initialize().
    _set_aside(paths.dataset_dir, staging)
    os.replace(saved, paths.dataset_dir)
    _set_aside(paths.datasets_dir, staging)
    if dataset.parts:
        os.replace(saved_parts, paths.datasets_dir)
    if model.in_place:
        _set_aside(paths.model_dir, staging)
        layout.write_text_atomic(paths.model_link, f"{model.folder}\n")
        model_location = str(model.folder)
    else:
        _set_aside(paths.model_link, staging)
        _set_aside(paths.model_dir, staging)
        os.replace(model.folder, paths.model_dir)
        model_location = layout.MODEL_DIR

    return InitializerMarker(
        fingerprint=fingerprint(spec),
        kubetune_version=__version__,
        job=spec.name,
        model=ModelFetched(
            uri=model.source,
            path=model_location,
            in_place=model.in_place,
            files=model.files,
            bytes=model.bytes,
            seconds=round(model.seconds, 3),
        ),
        dataset=DatasetFetched(
            kind=dataset_spec.kind,
            source=dataset.source,
            splits={name: split.num_rows for name, split in dataset.data.items()},
            columns=list(dataset.data[layout.TRAIN_SPLIT].column_names),
            downloaded_bytes=dataset.downloaded_bytes,
            download_seconds=round(dataset.seconds, 3),
            bytes=saved_bytes,
            seconds=round(dataset_seconds, 3),
            details=dataset.details,
        ),
        seconds=round(time.monotonic() - start, 3),
        finished_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )


def _save(data: DatasetDict, folder: Path, what: str) -> None:
    from kubetune.storage_initializer.errors import InitializerError, first_line

    try:
        data.save_to_disk(str(folder))
    except Exception as error:
        raise InitializerError(
            what, f"cannot save to the workspace: {first_line(error)}"
        ) from error


@dataclass(frozen=True)
class Initialized:
    """What `initialize` did: the workspace's marker, and whether it was there already."""

    marker: InitializerMarker
    reused: bool


def initialize(spec: JobSpec, workspace: Path, env: Mapping[str, str] = os.environ) -> Initialized:
    """Fetches the spec's model and dataset into `workspace`, then writes the completion marker.

    Secrets are read from `env` (the variables of `kubetune.contract.secrets`). A workspace
    already initialized for this spec is reused as it is.

    Raises:
        InitializerError: a failure the user can fix (one line: what was asked for, what went
            wrong).
    """
    workspace = Path(workspace)
    workspace.mkdir(parents=True, exist_ok=True)
    done = completed(spec, workspace)
    if done is not None:
        log.info("workspace %s is already initialized for this spec; nothing to fetch", workspace)
        return Initialized(done, reused=True)
    with _locked(workspace):
        done = completed(spec, workspace)  # another initializer may have finished meanwhile
        if done is not None:
            log.info("workspace %s was initialized by another process; nothing to fetch", workspace)
            return Initialized(done, reused=True)
        Workspace(workspace).marker.unlink(missing_ok=True)
        for stale in workspace.glob(STAGING_PREFIX + "*"):
            log.info("removing %s left by an interrupted run", stale.name)
            shutil.rmtree(stale, ignore_errors=True)
        staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=workspace))
        try:
            marker = _fetch_into(spec, workspace, staging, env)
            layout.write_json_atomic(Workspace(workspace).marker, marker.to_dict())
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    data = marker.dataset
    rows = ", ".join(f"{name} {count} rows" for name, count in data.splits.items())
    log.info(
        "initialized %s: model %s (%s), dataset %s (%s; %s downloaded, %s saved) in %.1f s",
        workspace,
        marker.model.uri,
        human_bytes(marker.model.bytes),
        data.source,
        rows,
        human_bytes(data.downloaded_bytes),
        human_bytes(data.bytes),
        marker.seconds,
    )
    return Initialized(marker, reused=False)
