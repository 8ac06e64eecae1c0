"""Fetching datasets (Hugging Face Hub, S3, local files) into one `DatasetDict` of train/eval.

Whatever the source, the result is a `DatasetDict` with split 'train' (the `split` expression;
by default the source's 'train' split, or its only split) and 'eval' when `eval_split` is given.
Files load through the `datasets` packaged builders (csv, json, parquet, text); a folder of
files gets split names from file names (train.csv, test.csv); a `save_to_disk` folder loads
with `load_from_disk`. Split expressions ('train[:3000]', 'train[10%:]+test') are applied with
the `datasets` split grammar in every case.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kubetune.contract import layout
from kubetune.contract.secrets import DATASET_TOKEN_ENV
from kubetune.contract.spec import DatasetSpec, HubDatasetSpec, LocalDatasetSpec, S3DatasetSpec
from kubetune.storage_initializer import s3_fetch
from kubetune.storage_initializer.errors import InitializerError, first_line

if TYPE_CHECKING:
    from datasets import Dataset, DatasetDict

FORMATS = {".csv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet", ".txt": "text"}
COMPRESSIONS = (".gz", ".bz2", ".xz", ".zst")
SAVED_DATASET_FILES = ("dataset_dict.json", "state.json")
ALLOWED_FORMATS = "CSV (.csv), JSON (.json), JSON Lines (.jsonl), Parquet (.parquet), text (.txt), optionally compressed (.gz, .bz2, .xz, .zst)"


@dataclass
class FetchedDataset:
    """A dataset ready to save, with what was downloaded to get it (for a mix, `parts`: each
    dataset as fetched)."""

    data: DatasetDict
    source: str
    downloaded_bytes: int = 0
    seconds: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)
    parts: list[FetchedDataset] = field(default_factory=list)


def file_format(name: str) -> str | None:
    """The `datasets` builder for a file name ('csv', 'json', 'parquet', 'text'), or None."""
    lower = name.lower()
    for compression in COMPRESSIONS:
        if lower.endswith(compression):
            lower = lower[: -len(compression)]
            break
    for suffix, builder in FORMATS.items():
        if lower.endswith(suffix):
            return builder
    return None


def is_saved_dataset(folder: Path) -> bool:
    """Whether `folder` holds a `save_to_disk` result (a Dataset or a DatasetDict)."""
    return any((folder / name).is_file() for name in SAVED_DATASET_FILES)


def _root_cause(error: BaseException) -> BaseException:
    seen = {id(error)}
    while True:
        nxt = error.__cause__ or error.__context__
        if nxt is None or id(nxt) in seen:
            return error
        seen.add(id(nxt))
        error = nxt


def _as_dict(data: Dataset | DatasetDict) -> DatasetDict:
    from datasets import Dataset, DatasetDict

    if isinstance(data, Dataset):
        return DatasetDict({layout.TRAIN_SPLIT: data})
    return data


def load_path(path: Path, what: str, cache_dir: Path) -> DatasetDict:
    """Loads a data file, a folder of data files or a `save_to_disk` folder as a DatasetDict."""
    import datasets

    if not path.exists():
        raise InitializerError(what, f"no such file or folder: {path}")
    try:
        if path.is_dir():
            if is_saved_dataset(path):
                return _as_dict(datasets.load_from_disk(str(path)))
            files = [p for p in path.rglob("*") if p.is_file() and file_format(p.name)]
            if not files:
                raise InitializerError(
                    what,
                    f"no data files in {path.name or path}; allowed: {ALLOWED_FORMATS}, or a save_to_disk folder",
                )
            builders = {file_format(p.name) for p in files}
            if len(builders) > 1:
                raise InitializerError(
                    what,
                    f"mixed data file formats {sorted(str(b) for b in builders)}; use one format per dataset",
                )
            loaded = datasets.load_dataset(str(path), cache_dir=str(cache_dir))
        else:
            builder = file_format(path.name)
            if builder is None:
                raise InitializerError(
                    what, f"unreadable file format {path.name!r}; allowed: {ALLOWED_FORMATS}"
                )
            loaded = datasets.load_dataset(
                builder, data_files={layout.TRAIN_SPLIT: str(path)}, cache_dir=str(cache_dir)
            )
    except InitializerError:
        raise
    except Exception as error:
        cause = _root_cause(error)
        if "corresponds to no data" in str(cause):  # how `datasets` reports a file without rows
            raise InitializerError(what, "empty dataset: the data holds no rows") from error
        raise InitializerError(
            what, f"cannot read the data: {type(cause).__name__}: {first_line(cause)}"
        ) from error
    return _as_dict(loaded)


def apply_split(data: DatasetDict, expression: str, what: str, field_name: str) -> Dataset:
    """The rows a split expression ('train[:3000]', 'train[10%:]', 'train+test') selects."""
    from datasets import ReadInstruction, concatenate_datasets

    try:
        instructions = ReadInstruction.from_spec(expression).to_absolute(
            {name: split.num_rows for name, split in data.items()}
        )
    except (ValueError, AssertionError) as error:
        raise InitializerError(
            what,
            f"{field_name}={expression!r}: {first_line(error).split('. Should be')[0].rstrip('.')}; "
            f"available splits: {sorted(data)}",
        ) from error
    parts = [data[i.splitname].select(range(i.from_, max(i.from_, i.to))) for i in instructions]
    if len(parts) == 1:
        return parts[0]
    try:
        return concatenate_datasets(parts)
    except ValueError as error:
        raise InitializerError(
            what, f"{field_name}={expression!r}: cannot join splits: {first_line(error)}"
        ) from error


def default_train(data: DatasetDict, what: str) -> Dataset:
    """The source's 'train' split, or its only split."""
    if layout.TRAIN_SPLIT in data:
        return data[layout.TRAIN_SPLIT]
    if len(data) == 1:
        return next(iter(data.values()))
    raise InitializerError(
        what,
        f"no 'train' split among {sorted(data)}; set split= to one of them (e.g. split={sorted(data)[0]!r})",
    )


def select_splits(
    data: DatasetDict, split: str | None, eval_split: str | None, what: str
) -> DatasetDict:
    """The DatasetDict to save: 'train' per `split`, and 'eval' per `eval_split` when given."""
    from datasets import DatasetDict

    selected = {
        layout.TRAIN_SPLIT: apply_split(data, split, what, "split")
        if split
        else default_train(data, what)
    }
    if eval_split:
        selected[layout.EVAL_SPLIT] = apply_split(data, eval_split, what, "eval_split")
    for name, rows in selected.items():
        if rows.num_rows == 0:
            asked = split if name == layout.TRAIN_SPLIT else eval_split
            raise InitializerError(
                what, f"empty dataset: the {name} split ({asked or 'default'}) has no rows"
            )
    return DatasetDict(selected)


def hub_cache_dir(env: Mapping[str, str], staging: Path) -> str | None:
    """Where `datasets` caches Hub downloads: its own cache when offline or when the user named one
    (HF_DATASETS_CACHE, HF_HOME), else a folder in the staging area, removed after the run."""
    import datasets.config

    offline = bool(datasets.config.HF_HUB_OFFLINE) or any(
        (env.get(name) or "").strip().lower() in ("1", "true", "yes", "on")
        for name in ("HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE")
    )
    if offline or env.get("HF_DATASETS_CACHE") or env.get("HF_HOME"):
        return None
    return str(staging / "hf-datasets-cache")


def _hub_dataset(
    spec: HubDatasetSpec, env: Mapping[str, str], staging: Path, what: str
) -> DatasetDict:
    import datasets

    token = env.get(DATASET_TOKEN_ENV) or None
    split, eval_split = spec.split, spec.eval_split
    kwargs: dict[str, Any] = {
        "revision": spec.revision,
        "token": token,
        "cache_dir": hub_cache_dir(env, staging),
    }
    try:
        if split is None:
            loaded = _as_dict(datasets.load_dataset(spec.repo_id, spec.name, **kwargs))
            return select_splits(loaded, None, eval_split, what)
        wanted = [split] + ([eval_split] if eval_split else [])
        parts = datasets.load_dataset(spec.repo_id, spec.name, split=wanted, **kwargs)
    except InitializerError:
        raise
    except Exception as error:
        raise InitializerError(what, _hub_problem(error)) from error
    names = [layout.TRAIN_SPLIT, layout.EVAL_SPLIT][: len(wanted)]
    data = datasets.DatasetDict(dict(zip(names, parts, strict=True)))
    for name, rows in data.items():
        if rows.num_rows == 0:
            raise InitializerError(what, f"empty dataset: the {name} split has no rows")
    return data


def _hub_problem(error: BaseException) -> str:
    from datasets.exceptions import DatasetNotFoundError

    text = first_line(error)
    if isinstance(error, DatasetNotFoundError):
        return f"not found on the Hugging Face Hub (or private/gated: set access_token): {text}"
    if isinstance(error, ConnectionError) or "offline" in text.lower():
        return (
            f"not in the local cache and the Hub cannot be reached (offline or no network): {text}"
        )
    cause = _root_cause(error)
    return f"{type(cause).__name__}: {first_line(cause)}"


def _s3_dataset(
    spec: S3DatasetSpec, env: Mapping[str, str], staging: Path, what: str
) -> FetchedDataset:
    bucket, key = spec.bucket_name, spec.file_key
    client = s3_fetch.s3_client(spec.endpoint_url, spec.region_name, env)
    selection = s3_fetch.resolve(client, bucket, key, what)
    raw = staging / "raw"
    target = raw
    if selection.single:
        target = s3_fetch.local_path(raw, selection.objects[0].key, selection.base, what)
        if file_format(target.name) is None:
            raise InitializerError(
                what, f"unreadable file format {target.name!r}; allowed: {ALLOWED_FORMATS}"
            )
    start = time.monotonic()
    size = s3_fetch.download(client, selection, raw, what, env)
    seconds = time.monotonic() - start
    loaded = load_path(target, what, staging / "cache")
    data = select_splits(loaded, spec.split, spec.eval_split, what)
    return FetchedDataset(
        data,
        spec.uri,
        downloaded_bytes=size,
        seconds=seconds,
        details={"objects": len(selection.objects), "endpoint_url": spec.endpoint_url},
    )


def fetch_dataset(spec: DatasetSpec, staging: Path, env: Mapping[str, str]) -> FetchedDataset:
    """Fetches the dataset a JobSpec names; the result is ready to save.

    `staging` is a scratch folder (downloads, `datasets` caches) that the caller removes.

    Raises:
        InitializerError: with a one-line reason.
    """
    what = spec.describe()
    if isinstance(spec, HubDatasetSpec):
        data = _hub_dataset(spec, env, staging, what)
        return FetchedDataset(data, f"hf://{spec.repo_id}")
    if isinstance(spec, S3DatasetSpec):
        return _s3_dataset(spec, env, staging, what)
    assert isinstance(spec, LocalDatasetSpec)
    loaded = load_path(Path(spec.path), what, staging / "cache")
    data = select_splits(loaded, spec.split, spec.eval_split, what)
    return FetchedDataset(data, spec.path)
