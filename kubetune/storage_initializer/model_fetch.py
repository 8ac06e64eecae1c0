"""Fetching model files (Hugging Face Hub, local folder, S3 prefix) without loading the model.

Only the files `from_pretrained` needs travel: configs, tokenizer/processor files and weights
(safetensors when the repo has them, else PyTorch .bin files). Hub downloads go through
`huggingface_hub.snapshot_download`: online straight into the staging folder, offline
(HF_HUB_OFFLINE=1) out of the local Hugging Face cache, hard-linked where possible. A local
folder is used in place (the workspace then names it in `model.path`) unless
KUBETUNE_COPY_LOCAL_MODEL=1 asks for a hard-linked or copied `model/`.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import os
import shutil
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from kubetune.contract.secrets import MODEL_TOKEN_ENV
from kubetune.contract.spec import DatasetSection, ModelSpec, S3DatasetSpec, dataset_sources
from kubetune.contract.uris import SourceKind
from kubetune.storage_initializer import s3_fetch
from kubetune.storage_initializer.errors import InitializerError, first_line

COPY_LOCAL_MODEL_ENV = "KUBETUNE_COPY_LOCAL_MODEL"
CONFIG_FILES = ("config.json", "adapter_config.json")
# Configs, tokenizers, processors, chat templates.
SUPPORT_PATTERNS = ("*.json", "*.model", "*.txt", "*.tiktoken", "*.jinja")
WEIGHT_PATTERNS = ("*.safetensors",)
FALLBACK_WEIGHT_PATTERNS = ("*.bin",)
NOT_WEIGHTS = ("training_args.bin", "optimizer.bin", "scheduler.bin", "rng_state*.bin")
# Folders with other frameworks' exports or raw checkpoints that from_pretrained does not read.
SKIPPED_FOLDERS = ("onnx", "openvino", "coreml", "tf", "flax", "runs", "original", "checkpoint-*")


@dataclass
class FetchedModel:
    """Where the model is now: `folder` (inside staging, or the local folder itself when `in_place`)."""

    folder: Path
    in_place: bool
    source: str
    files: int
    bytes: int
    seconds: float


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def select_model_files(files: Iterable[str]) -> list[str]:
    """The repo-relative paths `from_pretrained` needs out of `files` (weights, configs, tokenizers)."""
    candidates = []
    for name in files:
        path = PurePosixPath(name)
        if any(part.startswith(".") for part in path.parts):
            continue
        if len(path.parts) > 1 and any(fnmatch.fnmatch(path.parts[0], d) for d in SKIPPED_FOLDERS):
            continue
        candidates.append(path)

    def matches(path: PurePosixPath, patterns: Iterable[str]) -> bool:
        return any(fnmatch.fnmatch(path.name, p) for p in patterns)

    has_safetensors = any(matches(p, WEIGHT_PATTERNS) for p in candidates)
    weights = WEIGHT_PATTERNS if has_safetensors else FALLBACK_WEIGHT_PATTERNS
    chosen = [
        p
        for p in candidates
        if matches(p, SUPPORT_PATTERNS) or (matches(p, weights) and not matches(p, NOT_WEIGHTS))
    ]
    return sorted(str(p) for p in chosen)


def _link_or_copy(source: Path, target: Path) -> None:
    real = os.path.realpath(source)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(real, target)
    except OSError:
        shutil.copy2(real, target)


def _files_in(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder).as_posix()) for p in folder.rglob("*") if p.is_file())


def _check_model_folder(folder: Path, what: str) -> tuple[int, int]:
    files = [p for p in folder.rglob("*") if p.is_file()]
    if not any((folder / name).is_file() for name in CONFIG_FILES):
        listing = ", ".join(sorted(p.name for p in files)[:8]) or "no files"
        raise InitializerError(
            what, f"not a model folder: no {' or '.join(CONFIG_FILES)} (found: {listing})"
        )
    return len(files), sum(p.stat().st_size for p in files)


def _hub_problem(error: BaseException, repo_id: str, revision: str | None) -> str:
    from huggingface_hub import errors

    if isinstance(error, errors.RevisionNotFoundError):
        return f"revision {revision!r} does not exist in the Hugging Face repo {repo_id!r}"
    if isinstance(error, errors.GatedRepoError):
        return (
            "the repo is gated: set access_token to a token of an account that was granted access"
        )
    if isinstance(error, errors.RepositoryNotFoundError):
        return "repo not found on the Hugging Face Hub (or private: set access_token)"
    if isinstance(error, errors.LocalEntryNotFoundError | errors.OfflineModeIsEnabled):
        return (
            "not in the local Hugging Face cache and the Hub cannot be reached "
            "(HF_HUB_OFFLINE=1 or no network); pre-fill HF_HUB_CACHE or go online"
        )
    if isinstance(error, errors.HfHubHTTPError) and error.response is not None:
        status = error.response.status_code
        if status in (401, 403):
            return f"access refused by the Hugging Face Hub (HTTP {status}); check access_token"
    return f"{type(error).__name__}: {first_line(error)}"


def _hub_model(
    repo_id: str, revision: str | None, staging: Path, env: Mapping[str, str], what: str
) -> int:
    from huggingface_hub import HfApi, constants, snapshot_download

    token = env.get(MODEL_TOKEN_ENV) or None
    target = staging / "model"
    offline = constants.HF_HUB_OFFLINE or _truthy(env.get("HF_HUB_OFFLINE"))
    try:
        if offline:
            cached = Path(
                snapshot_download(
                    repo_id,
                    revision=revision,
                    token=token,
                    local_files_only=True,
                    allow_patterns=list(
                        SUPPORT_PATTERNS + WEIGHT_PATTERNS + FALLBACK_WEIGHT_PATTERNS
                    ),
                )
            )
            chosen = select_model_files(_files_in(cached))
            for name in chosen:
                _link_or_copy(cached / name, target / name)
        else:
            chosen = select_model_files(
                HfApi(token=token).list_repo_files(repo_id, revision=revision)
            )
            snapshot_download(
                repo_id, revision=revision, token=token, local_dir=target, allow_patterns=chosen
            )
            shutil.rmtree(target / ".cache", ignore_errors=True)
    except Exception as error:
        raise InitializerError(what, _hub_problem(error, repo_id, revision)) from error
    if not chosen:
        raise InitializerError(what, "the repo has no model files (config, tokenizer or weights)")
    return sum((target / name).stat().st_size for name in chosen)


def _s3_model(
    bucket: str,
    prefix: str,
    staging: Path,
    env: Mapping[str, str],
    dataset: DatasetSection,
    what: str,
) -> int:
    endpoint: str | None
    s3_datasets = [d for d in dataset_sources(dataset) if isinstance(d, S3DatasetSpec)]
    if s3_datasets:
        endpoint, region = s3_datasets[0].endpoint_url, s3_datasets[0].region_name
    else:
        endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
        region = None
    client = s3_fetch.s3_client(endpoint, region, env)
    selection = s3_fetch.resolve(client, bucket, prefix.rstrip("/") + "/", what)
    relative = {o.key[len(selection.base) :]: o for o in selection.objects}
    chosen = select_model_files(relative)
    if not chosen:
        raise InitializerError(
            what, f"no model files (config, tokenizer or weights) under prefix {selection.base!r}"
        )
    selection = dataclasses.replace(selection, objects=tuple(relative[name] for name in chosen))
    return s3_fetch.download(client, selection, staging / "model", what, env)


def fetch_model(
    model: ModelSpec, dataset: DatasetSection, staging: Path, env: Mapping[str, str]
) -> FetchedModel:
    """Fetches the model a JobSpec names into `staging/model` (or finds it in place).

    `dataset` is the JobSpec's dataset: an S3 dataset (the first of a mix) lends its endpoint to
    an S3 model.

    Raises:
        InitializerError: with a one-line reason.
    """
    uri = model.uri
    what = f"model {uri}"
    try:
        source = model.source
    except ValueError as error:
        raise InitializerError(what, first_line(error)) from error
    start = time.monotonic()
    if source.kind == SourceKind.LOCAL:
        folder = Path(source.location)
        if not folder.is_dir():
            raise InitializerError(
                what,
                f"no such folder: {folder}" if not folder.exists() else f"not a folder: {folder}",
            )
        if not os.access(folder, os.R_OK | os.X_OK):
            raise InitializerError(what, f"folder {folder} is not readable by this process")
        files, size = _check_model_folder(folder, what)
        if not _truthy(env.get(COPY_LOCAL_MODEL_ENV)):
            return FetchedModel(folder.resolve(), True, uri, files, size, time.monotonic() - start)
        for name in _files_in(folder):
            if not any(part.startswith(".") for part in PurePosixPath(name).parts):
                _link_or_copy(folder / name, staging / "model" / name)
    elif source.kind == SourceKind.HF:
        _hub_model(source.location, model.hub_revision, staging, env, what)
    else:
        _s3_model(str(source.bucket), source.location, staging, env, dataset, what)
    files, size = _check_model_folder(staging / "model", what)
    return FetchedModel(staging / "model", False, uri, files, size, time.monotonic() - start)
