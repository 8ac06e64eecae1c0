"""Small metrics implemented here (no scikit-learn/seqeval): accuracy, macro-F1, entity F1, SQuAD."""

from __future__ import annotations

import collections
import re
import string
from collections.abc import Sequence


def accuracy(predictions: Sequence[int], references: Sequence[int]) -> float:
    """The fraction of predictions equal to their reference."""
    if not references:
        return 0.0
    return sum(int(p == r) for p, r in zip(predictions, references, strict=True)) / len(references)


def macro_f1(predictions: Sequence[int], references: Sequence[int]) -> float:
    """F1 per class present in references or predictions, averaged with equal weight."""
    classes = sorted(set(references) | set(predictions))
    if not classes:
        return 0.0
    scores = []
    for c in classes:
        tp = sum(1 for p, r in zip(predictions, references, strict=True) if p == c and r == c)
        fp = sum(1 for p, r in zip(predictions, references, strict=True) if p == c and r != c)
        fn = sum(1 for p, r in zip(predictions, references, strict=True) if p != c and r == c)
        scores.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return sum(scores) / len(scores)


# --- entity-level F1 over IOB tags (the seqeval default, non-strict mode) ---------------------------


def _split_tag(tag: str) -> tuple[str, str]:
    if tag in ("O", ""):
        return "O", ""
    if len(tag) > 2 and tag[1] in "-_" and tag[0] in "BIESL":
        return ("E" if tag[0] == "L" else tag[0]), tag[2:]
    return "I", tag  # a bare type, e.g. 'PER', continues or starts an entity of that type


def entities(tags: Sequence[str]) -> set[tuple[str, int, int]]:
    """The (type, first, last) entities in one sentence of IOB/IOB2/IOBES tags."""
    found: set[tuple[str, int, int]] = set()
    prefix_prev, type_prev, start = "O", "", -1
    for i, tag in enumerate([*tags, "O"]):
        prefix, kind = _split_tag(tag)
        ends = prefix_prev in ("E", "S") or (
            prefix_prev in ("B", "I") and (prefix in ("B", "S", "O") or kind != type_prev)
        )
        if ends and start >= 0:
            found.add((type_prev, start, i - 1))
            start = -1
        begins = prefix in ("B", "S") or (
            prefix in ("I", "E") and (prefix_prev in ("O", "E", "S") or kind != type_prev)
        )
        if begins:
            start = i
        prefix_prev, type_prev = prefix, kind
    return found


def entity_scores(
    predictions: Sequence[Sequence[str]], references: Sequence[Sequence[str]]
) -> dict[str, float]:
    """Micro precision, recall and F1 over entities (exact type and span), plus token accuracy."""
    tp = n_pred = n_true = 0
    correct_tokens = total_tokens = 0
    for pred, true in zip(predictions, references, strict=True):
        pred_entities, true_entities = entities(pred), entities(true)
        tp += len(pred_entities & true_entities)
        n_pred += len(pred_entities)
        n_true += len(true_entities)
        correct_tokens += sum(int(p == t) for p, t in zip(pred, true, strict=True))
        total_tokens += len(true)
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_true if n_true else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "accuracy": correct_tokens / total_tokens if total_tokens else 0.0,
    }


# --- SQuAD exact match and F1 ---------------------------------------------------------------------


def normalize_answer(text: str) -> str:
    """Lower case, without punctuation, articles and extra white space (the SQuAD rules)."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def squad_f1(prediction: str, truth: str) -> float:
    """SQuAD's token F1 between a predicted and a true answer (after normalizing both)."""
    pred_tokens, true_tokens = normalize_answer(prediction).split(), normalize_answer(truth).split()
    if not pred_tokens or not true_tokens:
        return float(pred_tokens == true_tokens)
    common = collections.Counter(pred_tokens) & collections.Counter(true_tokens)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred_tokens), same / len(true_tokens)
    return 2 * precision * recall / (precision + recall)


def squad_scores(predictions: Sequence[str], answers: Sequence[Sequence[str]]) -> dict[str, float]:
    """Exact match and F1 in percent, each the best over an example's reference answers."""
    if not predictions:
        return {"exact_match": 0.0, "f1": 0.0}
    em = f1 = 0.0
    for pred, truths in zip(predictions, answers, strict=True):
        truths = list(truths) or [""]
        em += max(float(normalize_answer(pred) == normalize_answer(t)) for t in truths)
        f1 += max(squad_f1(pred, t) for t in truths)
    return {"exact_match": 100 * em / len(predictions), "f1": 100 * f1 / len(predictions)}
