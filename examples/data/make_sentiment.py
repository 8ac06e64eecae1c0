"""Builds examples/data/sentiment/{train,test}.csv: short review-like texts labelled by sentiment.

Where the signal comes from: the VADER sentiment lexicon (Hutto & Gilbert, 2014; MIT licence,
shipped in the PyPI package `vaderSentiment` as vader_lexicon.txt), in which ten human raters
scored each word from -4 (most negative) to +4 (most positive). We keep lower-case words of at
least four letters that raters agreed on (standard deviation < 1, |mean| >= 1.5) and that are
whole tokens in BERT's vocabulary, then write each text from a template around two or three
such words; its label is the sign of the summed human scores ('positive' or 'negative'). Some
texts mix polarities, so a model must weigh words, not spot one. The texts are synthetic; the
word valences are human judgements.

Re-create the files (they are committed, so this is only needed to change them):

    pip download --no-deps vaderSentiment==3.3.2 && unzip -o vaderSentiment-3.3.2-*.whl -d vader
    python examples/data/make_sentiment.py vader/vaderSentiment/vader_lexicon.txt VOCAB.txt
"""

from __future__ import annotations

import csv
import random
import sys
from pathlib import Path

SUBJECTS = [
    "movie",
    "film",
    "plot",
    "ending",
    "soundtrack",
    "acting",
    "hotel",
    "room",
    "staff",
    "service",
    "meal",
    "dessert",
    "coffee",
    "phone",
    "battery",
    "screen",
    "book",
    "chapter",
    "concert",
    "trip",
    "flight",
    "course",
    "game",
    "app",
    "update",
    "album",
    "show",
    "episode",
    "class",
    "tour",
]
TEMPLATES = [
    "the {s} in one word: {a}.",
    "{a} and {b}, that sums up the {s}.",
    "my review of the {s}: {a}, {b}.",
    "honestly the {s} left me thinking {a}.",
    "words that come to mind after the {s}: {a}, {b} and {c}.",
    "{a}! that is how the {s} felt, {b} even.",
    "about the {s}? {a}, then {b}.",
    "the {s} was all {a} and {b}.",
    "if i had to describe the {s}: {a}.",
    "{a}, {b}, {c}. the {s} in short.",
]


def load_words(lexicon: Path, vocab: Path) -> list[tuple[str, float]]:
    known = set(vocab.read_text().split())
    words = []
    for line in lexicon.read_text(encoding="utf-8", errors="replace").splitlines():
        parts = line.split("\t")
        if len(parts) < 3:
            continue
        word, mean, std = parts[0], float(parts[1]), float(parts[2])
        if (
            word.isalpha()
            and word.islower()
            and len(word) >= 4
            and word in known
            and abs(mean) >= 1.5
            and std < 1.0
        ):
            words.append((word, mean))
    return words


def make_rows(
    words: list[tuple[str, float]], n: int, rng: random.Random
) -> list[dict[str, object]]:
    positive = [w for w in words if w[1] > 0]
    negative = [w for w in words if w[1] < 0]
    rows: list[dict[str, object]] = []
    while len(rows) < n:
        label = len(rows) % 2
        main, other = (positive, negative) if label else (negative, positive)
        picked = rng.sample(main, rng.choice([1, 2, 2, 3]))
        if rng.random() < 0.3:
            picked.append(rng.choice(other))
        rng.shuffle(picked)
        score = sum(w[1] for w in picked)
        if abs(score) < 1.5 or (score > 0) != bool(label):
            continue
        fitting = [t for t in TEMPLATES if sum(f"{{{k}}}" in t for k in "abc") == len(picked)]
        if not fitting:
            continue
        template = rng.choice(fitting)
        names = dict(zip("abc", [w[0] for w in picked], strict=False))
        text = template.format(s=rng.choice(SUBJECTS), **names)
        rows.append({"text": text, "label": "positive" if label else "negative"})
    return rows


def main() -> None:
    lexicon, vocab = Path(sys.argv[1]), Path(sys.argv[2])
    rng = random.Random(20261129)
    rows = make_rows(load_words(lexicon, vocab), 3600, rng)
    rng.shuffle(rows)
    out = Path(__file__).parent / "sentiment"
    out.mkdir(exist_ok=True)
    for name, part in (("train", rows[:3000]), ("test", rows[3000:])):
        with (out / f"{name}.csv").open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=["text", "label"])
            writer.writeheader()
            writer.writerows(part)
        print(f"{out / name}.csv: {len(part)} rows")


if __name__ == "__main__":
    main()
