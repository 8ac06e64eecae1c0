"""What a worker does before training: wait for the workspace, size its thread pool."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from kubetune.contract.layout import Workspace
from kubetune.contract.quantities import usable_cores
from kubetune.runtime.errors import TrainerError

log = logging.getLogger("kubetune.runtime")

DEFAULT_MARKER_TIMEOUT = 3600.0


def wait_for_marker(
    root: Path, timeout: float = DEFAULT_MARKER_TIMEOUT, poll_seconds: float = 1.0
) -> None:
    """Returns once the storage initializer's completion marker exists.

    Raises:
        TrainerError: `timeout` seconds passed without it.
    """
    marker = Workspace(root).marker
    deadline = time.monotonic() + timeout
    announced = False
    while not marker.is_file():
        if time.monotonic() >= deadline:
            raise TrainerError(
                f"timed out after {timeout:g}s waiting for {marker}, the storage initializer's completion "
                "marker: the storage initializer did not finish (check its logs), or --marker-timeout is too short"
            )
        if not announced:
            log.info("waiting for %s (storage initializer) for up to %gs", marker, timeout)
            announced = True
        time.sleep(min(poll_seconds, max(deadline - time.monotonic(), 0.01)))


def configure_threads() -> int | None:
    """Without OMP_NUM_THREADS, gives each local process an equal share of the cores; returns it."""
    if os.environ.get("OMP_NUM_THREADS"):
        return None
    import torch

    local_world = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    threads = max(1, usable_cores() // local_world)
    torch.set_num_threads(threads)
    return threads
