"""The order of train samples: batches of similar lengths unless the user chose otherwise.

Tasks pad each batch to its longest sample, so a batch that mixes a 10-token text with a
250-token one computes mostly padding. By default kubetune orders each epoch so that every
step's batches (on all ranks) hold samples of similar length, and shuffles the steps, which
cuts the padded tokens without sorting the whole epoch by length.
`HuggingFaceTrainerParams(length_grouping=False)`, or a `train_sampling_strategy` other than
the default in `TrainingArguments`, turns this off.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch.utils.data import Sampler
from transformers import Trainer

from kubetune.contract.spec import TrainerSpec

# A step's group is drawn from a window of at most this many steps' worth of samples: the
# wider it is, the more alike the lengths in a step and the less random which samples meet.
WINDOW_STEPS = 50


def length_grouped_order(
    lengths: Sequence[int], group_size: int, generator: torch.Generator
) -> list[int]:
    """Sample indices in groups of `group_size` similar lengths; the longest group first, the rest shuffled.

    The samples are shuffled, cut into windows of up to WINDOW_STEPS groups, sorted by length
    within each window and cut into groups; the groups are then shuffled, except that the one
    holding the longest sample comes first (an out-of-memory error shows at once) and an
    incomplete group comes last.
    """
    n = len(lengths)
    if n == 0:
        return []
    steps_per_window = max(1, min(WINDOW_STEPS, n // (group_size * 4)))
    window = group_size * steps_per_window
    shuffled = torch.randperm(n, generator=generator).tolist()
    ordered: list[int] = []
    for start in range(0, n, window):
        ordered.extend(sorted(shuffled[start : start + window], key=lambda i: -lengths[i]))
    groups = [ordered[i : i + group_size] for i in range(0, n, group_size)]
    tail = groups.pop() if len(groups[-1]) < group_size and len(groups) > 1 else None
    longest = max(range(len(groups)), key=lambda g: lengths[groups[g][0]])
    first = groups.pop(longest)
    rest = [groups[i] for i in torch.randperm(len(groups), generator=generator).tolist()]
    return [i for group in [first, *rest, *([tail] if tail else [])] for i in group]


class LengthGroupedEpochSampler(Sampler[int]):
    """`length_grouped_order` for each epoch, the same on every rank: seeded by (seed, epoch)."""

    def __init__(self, lengths: Sequence[int], group_size: int, seed: int) -> None:
        self.lengths = list(lengths)
        self.group_size = group_size
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Sets the epoch whose order the next iteration gives (the Trainer calls it)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        order = length_grouped_order(self.lengths, self.group_size, generator)
        self.epoch += 1  # set_epoch overrides this when the caller keeps count
        return iter(order)


def groups_by_length(trainer_spec: TrainerSpec, lengths: Sequence[int] | None) -> bool:
    """Whether kubetune orders the train samples: asked for, no other order chosen (the spec's
    training_arguments hold only the fields the user set), lengths vary."""
    return (
        trainer_spec.length_grouping
        and not trainer_spec.sets("train_sampling_strategy")
        and lengths is not None
        and len(set(lengths)) > 1
    )


class LengthGroupedTrainer(Trainer):
    """A Trainer whose train batches come from LengthGroupedEpochSampler."""

    def __init__(self, *args: Any, train_lengths: Sequence[int], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.train_lengths = train_lengths

    def _get_train_sampler(self, train_dataset: Any = None) -> Sampler[int]:
        a = self.args
        return LengthGroupedEpochSampler(
            self.train_lengths,
            group_size=a.per_device_train_batch_size * max(1, a.world_size),
            seed=a.data_seed if a.data_seed is not None else a.seed,
        )
