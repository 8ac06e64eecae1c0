"""Several fetched datasets made into the one DatasetDict a job trains on (a dataset mix).

The datasets must have the same columns (a column's type is converted to the first dataset's
where `datasets` can cast it). Each train split is first cut or repeated to its `num_samples`;
then the train splits are concatenated in order, or, when the parts have weights, interleaved
at random: each next row comes from part i with probability weight_i / sum(weights), drawn with
the mix's seed, until the stopping strategy ends it ('first_exhausted': when a part has no rows
left; 'all_exhausted': once every part was used whole, parts that ran out starting over). The
eval split is the parts' eval splits concatenated, never weighted.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from kubetune.contract import layout
from kubetune.contract.spec import DatasetMixSpec
from kubetune.storage_initializer.dataset_fetch import FetchedDataset, fetch_dataset
from kubetune.storage_initializer.errors import InitializerError, first_line

if TYPE_CHECKING:
    from datasets import Dataset, DatasetDict

# A column added while mixing to count where each row came from (removed before saving).
_PART_COLUMN = "__kubetune_mix_part"


@dataclass(frozen=True)
class Mixed:
    """A mixed train split and how many of its rows came from each part."""

    data: Dataset
    rows_per_part: list[int]


def resize(dataset: Dataset, num_samples: int | None, seed: int) -> Dataset:
    """`num_samples` rows of `dataset` (None: all of it): a random choice without repeats when it
    has more rows, every row as often as fits and a random choice of the rest when it has fewer."""
    import numpy as np

    rows = dataset.num_rows
    if num_samples is None or num_samples == rows:
        return dataset
    rng = np.random.default_rng(seed)
    repeats, rest = divmod(num_samples, rows)
    chosen = np.sort(rng.choice(rows, size=rest, replace=False))
    indices = np.concatenate([np.tile(np.arange(rows), repeats), chosen])
    return dataset.select(indices.tolist())


def mix_train_splits(
    parts: Sequence[Dataset],
    weights: Sequence[float] | None,
    num_samples: Sequence[int | None],
    seed: int,
    stopping_strategy: str,
) -> Mixed:
    """The parts (of the same columns) resized to `num_samples` each, then concatenated (no
    `weights`) or interleaved with probabilities proportional to `weights` and `seed`."""
    from datasets import concatenate_datasets, interleave_datasets

    labelled = [
        resize(part, n, seed + i).add_column(_PART_COLUMN, [i] * (n or part.num_rows))
        for i, (part, n) in enumerate(zip(parts, num_samples, strict=True))
    ]
    if weights is None:
        mixed = concatenate_datasets(labelled)
    else:
        total = float(sum(weights))
        mixed = interleave_datasets(
            labelled,
            probabilities=[w / total for w in weights],
            seed=seed,
            stopping_strategy=stopping_strategy,
        )
    counts = Counter(mixed[_PART_COLUMN])
    return Mixed(mixed.remove_columns(_PART_COLUMN), [counts[i] for i in range(len(parts))])


def same_columns(parts: Sequence[tuple[str, Dataset]], what: str, split: str) -> list[Dataset]:
    """The parts' datasets with the first one's column types.

    Raises:
        InitializerError: the column names differ (naming each dataset and its columns), or a
            column's type cannot be converted to the first dataset's.
    """
    first_name, first = parts[0]
    names = [set(data.column_names) for _, data in parts]
    if any(n != names[0] for n in names):
        listing = "; ".join(f"{n} has {', '.join(d.column_names)}" for n, d in parts)
        uncommon = sorted(set.union(*names) - set.intersection(*names))
        raise InitializerError(
            what,
            f"the datasets' {split} columns differ ({', '.join(uncommon)} not in every one): "
            f"{listing}; a mix needs the same columns in each (rename them in the files, or "
            "choose other datasets)",
        )
    converted = [first]
    for name, data in parts[1:]:
        if data.features == first.features:
            converted.append(data)
            continue
        try:
            converted.append(data.cast(first.features))
        except Exception as error:
            differing = ", ".join(
                f"{column} is {data.features[column]} there but {first.features[column]} in "
                f"{first_name}"
                for column in first.column_names
                if data.features[column] != first.features[column]
            )
            raise InitializerError(
                what,
                f"{name}: {differing}, and cannot be converted ({first_line(error)}); a mix needs "
                "the same column types in each",
            ) from error
    return converted


def mix(spec: DatasetMixSpec, parts: Sequence[DatasetDict]) -> tuple[DatasetDict, list[int]]:
    """The DatasetDict a job trains on, from each part's fetched DatasetDict (train, and eval
    where it has one), and the rows of the mix that came from each part.

    Raises:
        InitializerError: the parts' columns differ, or `datasets` cannot join them.
    """
    from datasets import DatasetDict, concatenate_datasets

    what = spec.describe()
    names = [source.describe() for source in spec.sources]
    trains = same_columns(
        [(n, p[layout.TRAIN_SPLIT]) for n, p in zip(names, parts, strict=True)],
        what,
        layout.TRAIN_SPLIT,
    )
    weights = [p.weight or 0.0 for p in spec.parts] if spec.weighted else None
    try:
        mixed = mix_train_splits(
            trains,
            weights,
            [p.num_samples for p in spec.parts],
            spec.seed,
            spec.stopping_strategy,
        )
        result = {layout.TRAIN_SPLIT: mixed.data}
        evals = [
            (n, p[layout.EVAL_SPLIT])
            for n, p in zip(names, parts, strict=True)
            if layout.EVAL_SPLIT in p
        ]
        if evals:
            reference = [(names[0], trains[0]), *evals]
            result[layout.EVAL_SPLIT] = concatenate_datasets(
                same_columns(reference, what, layout.EVAL_SPLIT)[1:]
            )
    except InitializerError:
        raise
    except Exception as error:
        raise InitializerError(what, f"cannot mix the datasets: {first_line(error)}") from error
    return DatasetDict(result), mixed.rows_per_part


def fetch_mix(spec: DatasetMixSpec, staging: Path, env: Mapping[str, str]) -> FetchedDataset:
    """Fetches every dataset of the mix (each in a scratch folder of its own under `staging`)
    and mixes them; the result holds the mix and, in `parts`, each dataset as fetched.

    Raises:
        InitializerError: a dataset cannot be fetched (naming it), or the datasets cannot be
            mixed.
    """
    start = time.monotonic()
    parts = []
    for i, source in enumerate(spec.sources):
        scratch = staging / f"mix-{i}"
        scratch.mkdir()
        parts.append(fetch_dataset(source, scratch, env))
    data, rows = mix(spec, [part.data for part in parts])
    details = {
        "mixed": "interleaved" if spec.weighted else "concatenated",
        "stopping_strategy": spec.stopping_strategy if spec.weighted else None,
        "seed": spec.seed,
        "parts": [
            {
                "source": fetched.source,
                "kind": str(part.source.kind),
                "weight": part.weight,
                "num_samples": part.num_samples,
                "splits": {name: split.num_rows for name, split in fetched.data.items()},
                "rows_in_mix": used,
                "downloaded_bytes": fetched.downloaded_bytes,
            }
            for part, fetched, used in zip(spec.parts, parts, rows, strict=True)
        ],
    }
    return FetchedDataset(
        data,
        f"mix of {len(parts)} ({', '.join(part.source for part in parts)})",
        downloaded_bytes=sum(part.downloaded_bytes for part in parts),
        seconds=time.monotonic() - start,
        details=details,
        parts=parts,
    )
