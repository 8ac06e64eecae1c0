"""Checkpoints in an output directory: whose they are, and which one a run resumes from.

Every `checkpoint-N/` folder a job writes holds MARK_FILE with the job's uid (`JobSpec.uid`).
A run resumes on its own only from checkpoints of its own job, so a new job never "resumes"
another job's checkpoints that lie in a shared (absolute) output directory; the user's
`resume_from_checkpoint` names a checkpoint to start from deliberately. The runtime marks and
chooses checkpoints; the local backend checks a job's output directory with
`problems_before_creation` before it creates anything.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubetune.contract import layout

MARK_FILE = "kubetune-job.json"
STATE_FILE = "trainer_state.json"
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


@dataclass(frozen=True)
class Checkpoint:
    """A completely written checkpoint folder and the uid of the job that wrote it (None: unmarked)."""

    path: Path
    step: int
    owner: str | None


def folder(output_dir: Path, step: int) -> Path:
    """The folder of the checkpoint at `step` (as the Trainer names it)."""
    return output_dir / f"checkpoint-{step}"


def saved_state(path: Path) -> dict[str, Any]:
    """The Trainer state saved in a checkpoint (global_step, epoch, log_history); {} when unreadable."""
    state = _read_json(path / STATE_FILE)
    return state if isinstance(state, dict) else {}


def is_complete(path: Path) -> bool:
    """Whether `path` is a checkpoint folder the Trainer finished writing (its state is written last)."""
    return (path / STATE_FILE).is_file()


def checkpoints(output_dir: Path) -> list[Checkpoint]:
    """The complete checkpoint-N folders of `output_dir`, by step."""
    if not output_dir.is_dir():
        return []
    found = [
        Checkpoint(path, int(match.group(1)), owner(path))
        for path in output_dir.iterdir()
        if (match := _CHECKPOINT.match(path.name)) and is_complete(path)
    ]
    return sorted(found, key=lambda c: c.step)


def owner(checkpoint: Path) -> str | None:
    """The uid in a checkpoint's mark, or None when it has none."""
    mark = _read_json(checkpoint / MARK_FILE)
    uid = mark.get("uid") if isinstance(mark, dict) else None
    return uid if isinstance(uid, str) else None


def _read_json(path: Path) -> Any:
    try:
        return layout.read_json(path)
    except OSError:  # unreadable: as good as missing
        return None


def mark(checkpoint: Path, uid: str, job: str) -> None:
    """Marks a checkpoint folder as written by job `uid` (`job` names it for people reading the file).

    Raises:
        OSError: the mark cannot be written.
    """
    if owner(checkpoint) != uid:
        layout.write_json_atomic(checkpoint / MARK_FILE, {"uid": uid, "job": job})


def asked_path(asked: Any, output_dir: Path) -> Path | None:
    """The checkpoint a `resume_from_checkpoint` value names (relative: inside `output_dir`);
    None for True, False and None, which name no folder."""
    if not isinstance(asked, str) or not asked:
        return None
    return Path(asked) if os.path.isabs(asked) else output_dir / asked


def resume_point(output_dir: Path, uid: str | None, asked: Any) -> Path | None:
    """The checkpoint a run of job `uid` resumes from, None to start fresh.

    The job's own latest checkpoint first (a restarted run continues its progress); else the
    checkpoint `asked` names (`resume_from_checkpoint`); True or nothing asked starts fresh. A
    spec without uid (written before checkpoints were marked) takes every checkpoint as its own.

    Raises:
        ValueError: the asked checkpoint is missing, or checkpoints of another job lie in the
            way and none was asked for.
    """
    found = checkpoints(output_dir)
    own = [c for c in found if uid is None or c.owner == uid]
    if own:
        return own[-1].path
    path = asked_path(asked, output_dir)
    if path is not None:
        if not is_complete(path):
            raise ValueError(missing_checkpoint(asked, path))
        return path
    if found:
        raise ValueError(foreign_checkpoints(output_dir, found))
    return None


def problems_before_creation(output_dir: Path, asked: Any) -> list[str]:
    """Why a job not created yet cannot use `output_dir`: its outputs would land on another job's
    checkpoints, or its `resume_from_checkpoint` (`asked`) names no checkpoint; [] when it can."""
    path = asked_path(asked, output_dir)
    if path is None:
        found = checkpoints(output_dir)
        # A job not created yet has no checkpoints of its own.
        return [foreign_checkpoints(output_dir, found)] if found else []
    return [] if is_complete(path) else [missing_checkpoint(asked, path)]


def foreign_checkpoints(output_dir: Path, found: list[Checkpoint]) -> str:
    """The message for an output directory holding another job's checkpoints."""
    names = ", ".join(c.path.name for c in found[:5]) + (", ..." if len(found) > 5 else "")
    return (
        f"training_parameters.output_dir={str(output_dir)!r}: holds checkpoints of another job "
        f"({names}), which a new job does not resume on its own. Either give another "
        f"output_dir (or delete {output_dir}), or set resume_from_checkpoint="
        f"{str(found[-1].path)!r} to continue that run deliberately"
    )


def missing_checkpoint(asked: Any, path: Path) -> str:
    """The message for a `resume_from_checkpoint` that names no complete checkpoint."""
    return (
        f"training_parameters.resume_from_checkpoint={asked!r}: {path} is not a checkpoint "
        f"(a checkpoint-N folder holding {STATE_FILE}); give the path of one (relative paths "
        "are inside the output directory), or True to resume from this job's own latest "
        "checkpoint when it has one"
    )
