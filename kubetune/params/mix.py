"""Parameter classes for several datasets trained on as one (a dataset mix).

`dataset_provider_parameters` takes one dataset params object (the seed's form, unchanged), or
several: a list whose entries are dataset params or `MixedDataset`s (a dataset with its weight or
sample count), or a `DatasetMix` (the same list with the mix's stopping strategy). Without
weights the datasets are concatenated; with them they are interleaved at random, each sample
coming from a dataset with a chance proportional to its weight.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeGuard

from kubetune.contract.problems import Problems, shown
from kubetune.contract.spec import STOPPING_STRATEGIES
from kubetune.params import validation

if TYPE_CHECKING:
    from kubetune.params.hugging_face import HuggingFaceDatasetParams
    from kubetune.params.local import LocalDatasetParams
    from kubetune.params.s3 import S3DatasetParams

    DatasetParams = HuggingFaceDatasetParams | S3DatasetParams | LocalDatasetParams

PARAMS_NAMES = "HuggingFaceDatasetParams, S3DatasetParams or LocalDatasetParams"


def is_dataset_params(value: Any) -> TypeGuard[DatasetParams]:
    """Whether `value` names one dataset (HuggingFaceDatasetParams, S3DatasetParams, LocalDatasetParams)."""
    from kubetune.params.local import LocalDatasetParams
    from kubetune.params.s3 import S3DatasetParams

    if isinstance(value, LocalDatasetParams | S3DatasetParams):
        return True
    # Without its module loaded there is no HuggingFaceDatasetParams, and a mix of local and S3
    # datasets is checked without importing transformers (seconds).
    hub = sys.modules.get("kubetune.params.hugging_face")
    return hub is not None and isinstance(value, hub.HuggingFaceDatasetParams)


@dataclass
class MixedDataset:
    """One dataset of a mix, with its share.

    `dataset`: HuggingFaceDatasetParams, S3DatasetParams or LocalDatasetParams.
    `weight`: the relative chance that a sample of the mix comes from this dataset (only the
    ratios between the weights count; give every dataset of a mix a weight, or none).
    `num_samples`: the rows taken from this dataset's train split: a random choice of that many
    when it has more, all of them repeated (and a random choice of the rest) when it has fewer.
    """

    dataset: DatasetParams
    weight: float | None = None
    num_samples: int | None = None

    def __post_init__(self) -> None:
        problems = Problems("MixedDataset")
        if not is_dataset_params(self.dataset):
            problems.add(
                f"dataset={type(self.dataset).__name__}: must be {PARAMS_NAMES} (a mix is not nested)"
            )
        problems.extend(share_problems(self.weight, self.num_samples))
        problems.raise_if_any()


def share_problems(weight: Any, num_samples: Any, where: str = "") -> list[str]:
    """The problems with a dataset's share of a mix (`weight`, `num_samples`), the fields named
    under `where` (e.g. 'datasets[1].')."""
    problems = []
    if weight is not None:
        problems.append(validation.positive_number(f"{where}weight", weight, validation.MAX_WEIGHT))
    if num_samples is not None:
        problems.append(
            validation.int_in_range(
                f"{where}num_samples", num_samples, 1, validation.MAX_NUM_SAMPLES
            )
        )
    return [p for p in problems if p]


@dataclass
class DatasetMix:
    """Several datasets trained on as one.

    `datasets`: dataset params or `MixedDataset`s. Without weights they are concatenated in
    this order (every row of every dataset once per epoch; the trainer shuffles). With weights
    they are interleaved at random with the job's seed (`TrainingArguments.data_seed`, else
    `seed`): each next sample comes from a dataset with a chance proportional to its weight.
    `stopping_strategy` (weighted mixes only) says when the interleaved mix ends:
    'first_exhausted' (default) as soon as one dataset has no rows left, so no row is used
    twice and the rest of the other datasets is left out; 'all_exhausted' once every row of
    every dataset was used, the datasets that run out first starting over (their rows repeat).
    The eval split is the datasets' eval splits concatenated (never weighted).
    """

    datasets: list[DatasetParams | MixedDataset]
    stopping_strategy: str = STOPPING_STRATEGIES[0]

    def __post_init__(self) -> None:
        problems = Problems("DatasetMix")
        problems.extend(mix_problems(self.datasets, self.stopping_strategy))
        problems.raise_if_any()
        self.datasets = list(self.datasets)

    @property
    def parts(self) -> list[MixedDataset]:
        """Every dataset of the mix as a MixedDataset (plain params: no weight, all rows)."""
        return [d if isinstance(d, MixedDataset) else MixedDataset(d) for d in self.datasets]

    @property
    def weighted(self) -> bool:
        """Whether the datasets are interleaved by weight (else concatenated)."""
        return any(part.weight is not None for part in self.parts)


def mix_problems(
    datasets: Any,
    stopping_strategy: Any = STOPPING_STRATEGIES[0],
    where: str = "datasets",
    strategy_field: str = "stopping_strategy",
) -> list[str]:
    """The problems with a mix's datasets (each entry named by its index under `where`) and its
    stopping strategy (named `strategy_field`)."""
    if not isinstance(datasets, list | tuple) or not datasets:
        got = "an empty list" if isinstance(datasets, list | tuple) else type(datasets).__name__
        return [f"{where}: must be a non-empty list of {PARAMS_NAMES} or MixedDataset, not {got}"]
    problems = []
    # Index -> whether that entry has a weight (the entries that are datasets).
    weighted: dict[int, bool] = {}
    for i, entry in enumerate(datasets):
        if isinstance(entry, MixedDataset):
            weighted[i] = entry.weight is not None
        elif is_dataset_params(entry):
            weighted[i] = False
        else:
            problems.append(
                f"{where}[{i}]={type(entry).__name__}: must be {PARAMS_NAMES} or MixedDataset"
            )
    problems.extend(
        layout_problems(len(datasets), weighted, stopping_strategy, where, strategy_field)
    )
    return problems


def layout_problems(
    count: int,
    weighted: Mapping[int, bool],
    stopping_strategy: Any,
    where: str = "datasets",
    strategy_field: str = "stopping_strategy",
) -> list[str]:
    """The problems of a mix of `count` datasets as a whole: their number, weights given to some
    but not all (`weighted`: entry index -> whether it has a weight, for the entries known to be
    datasets), and the stopping strategy (named `strategy_field`)."""
    problems = []
    if count > validation.MAX_MIX_DATASETS:
        problems.append(
            f"{where}: {count} datasets; a mix holds at most {validation.MAX_MIX_DATASETS}"
        )
    if any(weighted.values()) and not all(weighted.values()):
        without = [str(i) for i, w in weighted.items() if not w]
        problems.append(
            f"{where}[{', '.join(without)}]: no weight, while others have one; give every "
            "dataset of a mix a weight (interleaved by weight), or none (concatenated)"
        )
    if stopping_strategy not in STOPPING_STRATEGIES:
        problems.append(
            f"{strategy_field}={shown(stopping_strategy)}: must be one of "
            f"{', '.join(STOPPING_STRATEGIES)}"
        )
    elif stopping_strategy != STOPPING_STRATEGIES[0] and not any(weighted.values()):
        problems.append(
            f"{strategy_field}={stopping_strategy!r}: applies to datasets interleaved by weight; "
            "give the datasets weights, or leave stopping_strategy out"
        )
    return problems


def as_mix(value: Any) -> Any:
    """`value` as given, a list or tuple becoming a DatasetMix of its entries (when they make one;
    else the list as given: `mix_problems(value, where=...)` tells what is wrong)."""
    if isinstance(value, list | tuple) and not mix_problems(value):
        return DatasetMix(datasets=list(value))
    return value
