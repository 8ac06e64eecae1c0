"""Extractive question answering, SQuAD style: question, context, answers {text, answer_start}."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from peft import TaskType

from kubetune.contract.spec import TransformerType
from kubetune.runtime.errors import TrainerError
from kubetune.runtime.tasks import metrics
from kubetune.runtime.tasks.base import (
    MapCache,
    Prepared,
    Task,
    model_max_length,
    pad_multiple,
    require_fast_tokenizer,
    token_lengths,
)

if TYPE_CHECKING:
    from datasets import Dataset
    from transformers import EvalPrediction, PreTrainedModel

MAX_ANSWER_TOKENS = 30
BEST_CANDIDATES = 20


class QuestionAnswering(Task):
    transformer_type = TransformerType.QUESTION_ANSWERING
    peft_task_type = TaskType.QUESTION_ANS
    column_conventions: ClassVar[Mapping[str, tuple[str, ...]]] = {
        "question": ("question", "query"),
        "context": ("context", "passage"),
        "answers": ("answers", "answer"),
    }
    required_roles = ("question", "context", "answers")

    def prepare(
        self,
        train: Dataset,
        eval: Dataset | None,
        processor: Any,
        model: PreTrainedModel,
        cache: MapCache,
    ) -> Prepared:
        from transformers import DataCollatorWithPadding

        require_fast_tokenizer(processor, "question answering", "for offset mappings")
        question, context, answers = (
            self.column("question"),
            self.column("context"),
            self.column("answers"),
        )
        max_length = model_max_length(processor, model, "encoder", self.settings.max_length)
        stride = min(128, max_length // 4)

        def features(batch: dict[str, list[Any]], indices: list[int]) -> dict[str, Any]:
            encoded = processor(
                [q.lstrip() for q in batch[question]],
                batch[context],
                truncation="only_second",
                max_length=max_length,
                stride=stride,
                return_overflowing_tokens=True,
                return_offsets_mapping=True,
            )
            starts, ends, offsets, example_ids = [], [], [], []
            for i, sample in enumerate(encoded.pop("overflow_to_sample_mapping")):
                sequence_ids = encoded.sequence_ids(i)
                start, end = answer_positions(
                    encoded["offset_mapping"][i],
                    sequence_ids,
                    answer_spans(batch[answers][sample], answers),
                )
                starts.append(start)
                ends.append(end)
                offsets.append(
                    [
                        o if s == 1 else None
                        for o, s in zip(encoded["offset_mapping"][i], sequence_ids, strict=True)
                    ]
                )
                example_ids.append(indices[sample])
            encoded["start_positions"], encoded["end_positions"] = starts, ends
            encoded["offset_mapping"], encoded["example_id"] = offsets, example_ids
            return dict(encoded)

        def run(split: Dataset, name: str) -> Dataset:
            return cache.map(
                split,
                features,
                name,
                batched=True,
                with_indices=True,
                remove_columns=split.column_names,
            )

        train_features = run(train, "train").remove_columns(["offset_mapping", "example_id"])
        eval_model_features = None
        if eval is not None:
            eval_features = run(eval, "eval")
            eval_model_features = eval_features.remove_columns(["offset_mapping", "example_id"])
            scorer = SpanScorer(eval, eval_features, context, answers)
        return Prepared(
            train=train_features,
            eval=eval_model_features,
            collator=DataCollatorWithPadding(processor, pad_to_multiple_of=pad_multiple()),
            compute_metrics=scorer if eval is not None else None,
            train_lengths=token_lengths(train_features),
        )


def answer_spans(value: Any, column: str) -> list[tuple[int, str]]:
    """(answer_start, text) pairs from a SQuAD answers value."""
    if not isinstance(value, dict) or "text" not in value or "answer_start" not in value:
        raise TrainerError(
            f"column {column!r}: each value must be a mapping {{'text': [...], 'answer_start': [...]}} "
            f"(SQuAD format); got {value!r}"
        )
    return list(zip(list(value["answer_start"]), list(value["text"]), strict=True))


def answer_positions(
    offsets: list[tuple[int, int]], sequence_ids: list[int | None], spans: list[tuple[int, str]]
) -> tuple[int, int]:
    """Token positions of the first answer in this window of the context; (0, 0) when it is not in it."""
    if not spans:
        return 0, 0
    char_start, text = spans[0]
    char_end = char_start + len(text)
    context_tokens = [i for i, s in enumerate(sequence_ids) if s == 1]
    if not context_tokens:
        return 0, 0
    first, last = context_tokens[0], context_tokens[-1]
    if offsets[first][0] > char_start or offsets[last][1] < char_end:
        return 0, 0
    start = first
    while start <= last and offsets[start][0] <= char_start:
        start += 1
    end = last
    while end >= first and offsets[end][1] >= char_end:
        end -= 1
    return start - 1, end + 1


class SpanScorer:
    """Turns start/end logits of the eval features into answer texts; exact match and F1."""

    def __init__(self, examples: Dataset, features: Dataset, context: str, answers: str) -> None:
        self.contexts = list(examples[context])
        self.answers = [[t for _, t in answer_spans(a, answers)] for a in examples[answers]]
        self.offsets = list(features["offset_mapping"])
        self.example_ids = list(features["example_id"])
        self.allow_empty = any(not a for a in self.answers)

    def __call__(self, prediction: EvalPrediction) -> dict[str, float]:
        import numpy as np

        start_logits, end_logits = (np.asarray(x) for x in prediction.predictions[:2])
        best: dict[int, tuple[float, str]] = {}
        for feature, example in enumerate(self.example_ids):
            offsets = self.offsets[feature]
            starts = np.argsort(start_logits[feature])[::-1][:BEST_CANDIDATES]
            ends = np.argsort(end_logits[feature])[::-1][:BEST_CANDIDATES]
            candidates = (
                []
                if not self.allow_empty
                else [(start_logits[feature][0] + end_logits[feature][0], "")]
            )
            for s in starts:
                for e in ends:
                    if (
                        s >= len(offsets)
                        or e >= len(offsets)
                        or offsets[s] is None
                        or offsets[e] is None
                    ):
                        continue
                    if e < s or e - s + 1 > MAX_ANSWER_TOKENS:
                        continue
                    text = self.contexts[example][offsets[s][0] : offsets[e][1]]
                    candidates.append((start_logits[feature][s] + end_logits[feature][e], text))
            if candidates:
                top = max(candidates, key=lambda c: c[0])
                if example not in best or top[0] > best[example][0]:
                    best[example] = (float(top[0]), top[1])
        predicted = [best.get(i, (0.0, ""))[1] for i in range(len(self.contexts))]
        return metrics.squad_scores(predicted, self.answers)
