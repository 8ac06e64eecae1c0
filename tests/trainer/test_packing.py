"""Packed causal-LM samples do not see each other: the loss of a packed batch is the
token-weighted mean of the same samples' losses computed one by one."""

from __future__ import annotations

import random

import pytest
import torch

from kubetune.runtime.tasks import TaskSettings, task_for
from kubetune.runtime.tasks.base import IGNORE_INDEX, MapCache
from kubetune.runtime.tasks.causal_lm import CausalCollator
from kubetune.runtime.tasks.losses import shifted_token_cross_entropy
from tests import tiny_models as tm

WORDS = [*tm.POSITIVE, *tm.NEUTRAL, *tm.NAMES, *tm.PLACES]


def texts(n: int) -> list[dict[str, str]]:
    rng = random.Random(0)
    return [{"text": " ".join(rng.choices(WORDS, k=rng.randint(2, 9)))} for _ in range(n)]


def features(model, tokenizer, packing: bool) -> list[dict]:
    from datasets import Dataset

    task = task_for("AutoModelForCausalLM", TaskSettings(max_length=24, packing=packing))
    task.resolve_columns(["text"])
    prepared = task.prepare(
        Dataset.from_list(texts(12)), None, tokenizer, model, MapCache(None, "t")
    )
    return list(prepared.train)


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    return tm.tiny_llama(tmp_path_factory.mktemp("llama"))


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_packed_loss_is_the_token_weighted_mean_of_the_samples_alone(llama, attention):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(llama)
    model = AutoModelForCausalLM.from_pretrained(llama, attn_implementation=attention).eval()
    # As the Trainer runs it (TrainingArguments.use_cache=False): with a cache, transformers
    # would not look for packed samples in the position_ids.
    model.config.use_cache = False
    torch.manual_seed(0)
    with torch.no_grad():  # weights large enough that what a token attends to shows in the loss
        for parameter in model.parameters():
            parameter.normal_(0.0, 0.3)
    collate = CausalCollator(tokenizer.pad_token_id)

    def loss_and_targets(rows: list[dict]) -> tuple[float, int]:
        batch = collate(rows)
        with torch.no_grad():
            outputs = model(**{k: v for k, v in batch.items() if k != "labels"})
        loss = shifted_token_cross_entropy(outputs, batch["labels"])
        return float(loss), int(batch["labels"][:, 1:].ne(IGNORE_INDEX).sum())

    packed = features(model, tokenizer, packing=True)
    alone = features(model, tokenizer, packing=False)
    assert len(packed) < len(alone) // 2  # several samples share each packed sequence
    packed_loss, packed_targets = loss_and_targets(packed)
    losses = [loss_and_targets([row]) for row in alone]
    assert packed_targets == sum(n for _, n in losses)
    expected = sum(loss * n for loss, n in losses) / packed_targets
    assert packed_loss == pytest.approx(expected, rel=1e-5, abs=1e-5)
