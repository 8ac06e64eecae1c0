"""Container image names: defaults tagged with the package version, overridable by environment.

`STORAGE_INITIALIZER_IMAGE` and `TRAINER_TRANSFORMER_IMAGE` are read each time a job is rendered
(not at import), so setting them just before `train()` takes effect.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from kubetune import __version__

REGISTRY = "ghcr.io/kubetune"
INITIALIZER_IMAGE_ENV = "STORAGE_INITIALIZER_IMAGE"
TRAINER_IMAGE_ENV = "TRAINER_TRANSFORMER_IMAGE"


@dataclass(frozen=True)
class Images:
    """The images of one job: the storage initializer's and the trainer's."""

    initializer: str
    trainer: str


def default_images(gpu: bool, version: str = __version__) -> Images:
    """The default images for this package version; the CUDA trainer when GPUs are requested."""
    suffix = "-cuda" if gpu else ""
    return Images(
        initializer=f"{REGISTRY}/storage-initializer:{version}",
        trainer=f"{REGISTRY}/trainer:{version}{suffix}",
    )


def resolve_images(gpu: bool, env: Mapping[str, str] | None = None) -> Images:
    """The images to use now: the defaults, overridden by the two environment variables if set."""
    env = os.environ if env is None else env
    default = default_images(gpu)
    return Images(
        initializer=env.get(INITIALIZER_IMAGE_ENV) or default.initializer,
        trainer=env.get(TRAINER_IMAGE_ENV) or default.trainer,
    )
