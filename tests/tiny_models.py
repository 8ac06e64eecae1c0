"""Tiny models and datasets built offline for tests (no hub access)."""

from __future__ import annotations

import random
from pathlib import Path

POSITIVE = [
    "good",
    "great",
    "excellent",
    "wonderful",
    "love",
    "best",
    "happy",
    "fine",
    "superb",
    "nice",
]
NEGATIVE = ["bad", "awful", "terrible", "poor", "hate", "worst", "sad", "boring", "ugly", "dull"]
NEUTRAL = ["the", "a", "movie", "film", "was", "is", "very", "plot", "story", "actor", "this", "it"]
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
VOCAB = SPECIAL + POSITIVE + NEGATIVE + NEUTRAL


def tiny_tokenizer(path: str | Path):
    """A WordPiece BERT tokenizer over VOCAB, saved in `path`."""
    from transformers import BertTokenizer

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tokenizer = BertTokenizer(vocab={word: i for i, word in enumerate(VOCAB)}, do_lower_case=True)
    tokenizer.save_pretrained(path)
    return tokenizer


def tiny_bert_config(**overrides):
    from transformers import BertConfig

    settings = dict(
        vocab_size=len(VOCAB),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    settings.update(overrides)
    return BertConfig(**settings)


def tiny_bert_classifier(path: str | Path, num_labels: int = 2, seed: int = 0) -> Path:
    """A 2-layer BERT for sequence classification with its tokenizer, saved in `path`."""
    import torch
    from transformers import BertForSequenceClassification

    torch.manual_seed(seed)
    path = Path(path)
    tiny_tokenizer(path)
    model = BertForSequenceClassification(tiny_bert_config(num_labels=num_labels))
    model.save_pretrained(path)
    return path


def sentiment_rows(n: int, seed: int = 0) -> list[dict]:
    """`n` short texts labelled 1 (positive) or 0 (negative), with a learnable signal."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = i % 2
        words = rng.sample(NEUTRAL, 4) + rng.sample(POSITIVE if label else NEGATIVE, 2)
        rng.shuffle(words)
        rows.append({"text": " ".join(words[: rng.randint(3, 6)] + words[-1:]), "label": label})
    return rows


def sentiment_csv(path: str | Path, n: int = 64, seed: int = 0) -> Path:
    """A CSV file with `text,label` columns."""
    import csv

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["text", "label"])
        writer.writeheader()
        writer.writerows(sentiment_rows(n, seed))
    return path
