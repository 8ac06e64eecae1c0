"""Length-grouped train order: a permutation per epoch, the same on every rank, less padding."""

from __future__ import annotations

import itertools
import random

import pytest
import torch

from kubetune.contract.spec import TrainerSpec
from kubetune.runtime.sampling import (
    LengthGroupedEpochSampler,
    groups_by_length,
    length_grouped_order,
)


def lognormal_lengths(n: int, seed: int = 0) -> list[int]:
    rng = random.Random(seed)
    return [min(256, max(8, int(rng.lognormvariate(3.8, 0.7)))) for _ in range(n)]


def padded_tokens(order: list[int], lengths: list[int], batch: int) -> int:
    return sum(
        len(order[i : i + batch]) * max(lengths[j] for j in order[i : i + batch])
        for i in range(0, len(order), batch)
    )


@pytest.mark.parametrize(("n", "group"), [(1, 4), (7, 4), (64, 8), (1000, 32), (1003, 16)])
def test_every_sample_once(n, group):
    order = length_grouped_order(lognormal_lengths(n), group, torch.Generator().manual_seed(0))
    assert sorted(order) == list(range(n))


def test_groups_cut_padding_and_the_longest_comes_first():
    lengths = lognormal_lengths(2000)
    order = length_grouped_order(lengths, 16, torch.Generator().manual_seed(1))
    shuffled = torch.randperm(2000, generator=torch.Generator().manual_seed(1)).tolist()
    real = sum(lengths)
    assert real / padded_tokens(order, lengths, 16) > 0.9
    assert real / padded_tokens(shuffled, lengths, 16) < 0.5
    assert lengths[order[0]] == max(lengths)
    # The steps are shuffled, not sorted: lengths of successive groups go up as well as down.
    group_max = [lengths[order[i]] for i in range(0, 2000, 16)]
    assert any(a < b for a, b in itertools.pairwise(group_max[1:]))
    assert any(a > b for a, b in itertools.pairwise(group_max[1:]))


def test_an_incomplete_group_comes_last():
    lengths = lognormal_lengths(70)
    order = length_grouped_order(lengths, 16, torch.Generator().manual_seed(2))
    # 70 samples, groups of 16: windows of one group each, so the last 6 shuffled samples form
    # the incomplete group, which must close the epoch rather than split a full step.
    shuffled = torch.randperm(70, generator=torch.Generator().manual_seed(2)).tolist()
    assert set(order[64:]) == set(shuffled[64:])
    tail = [lengths[i] for i in order[64:]]
    assert tail == sorted(tail, reverse=True)


def test_epochs_differ_but_each_is_the_same_on_every_rank():
    lengths = lognormal_lengths(300)
    rank0 = LengthGroupedEpochSampler(lengths, group_size=8, seed=5)
    rank1 = LengthGroupedEpochSampler(lengths, group_size=8, seed=5)
    epoch0, epoch1 = list(rank0), list(rank0)  # counts epochs itself when nobody sets them
    assert epoch0 != epoch1
    rank1.set_epoch(1)
    assert list(rank1) == epoch1  # a resumed run replays the same epoch
    assert list(LengthGroupedEpochSampler(lengths, group_size=8, seed=6)) != epoch0


def test_only_when_asked_lengths_vary_and_no_other_order_was_chosen():
    def spec(length_grouping: bool = True, **training: str) -> TrainerSpec:
        return TrainerSpec(training_arguments=training, length_grouping=length_grouping)

    assert groups_by_length(spec(), [3, 5, 5])
    assert not groups_by_length(spec(length_grouping=False), [3, 5, 5])
    assert not groups_by_length(spec(train_sampling_strategy="sequential"), [3, 5, 5])
    assert not groups_by_length(spec(), [5, 5, 5])  # packed blocks
    assert not groups_by_length(spec(), None)  # images
