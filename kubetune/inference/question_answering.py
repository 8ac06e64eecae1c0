"""Extractive question answering as a transformers pipeline (transformers 5 has none).

`pipe(question="...", context="...")` (or a mapping, or lists of them) gives
{"answer", "score", "start", "end"}: the span of the context the model finds most likely to
answer, over every window of a long context (windows overlap by `stride` tokens).
"""

from __future__ import annotations

from typing import Any

from transformers import Pipeline

MAX_ANSWER_TOKENS = 30
MAX_LENGTH = 384
STRIDE = 128


class QuestionAnsweringPipeline(Pipeline):
    """Answers questions with a span of their context, from an `AutoModelForQuestionAnswering`."""

    def __call__(self, inputs: Any = None, *args: Any, **kwargs: Any) -> Any:
        """Answers `question=` from `context=` (strings, or lists of the same length), or
        `inputs`: a mapping {"question", "context"} or a list of them."""
        question, context = kwargs.pop("question", None), kwargs.pop("context", None)
        if question is not None:
            if isinstance(question, list):
                contexts = context if isinstance(context, list) else [context] * len(question)
                inputs = [
                    {"question": q, "context": c} for q, c in zip(question, contexts, strict=True)
                ]
            else:
                inputs = {"question": question, "context": context}
        return super().__call__(inputs, *args, **kwargs)

    def _sanitize_parameters(
        self,
        max_answer_tokens: int | None = None,
        max_length: int | None = None,
        stride: int | None = None,
        **kwargs: Any,
    ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        preprocess = {k: v for k, v in (("max_length", max_length), ("stride", stride)) if v}
        postprocess = {"max_answer_tokens": max_answer_tokens} if max_answer_tokens else {}
        return preprocess, {}, postprocess

    def preprocess(self, input_: Any, **preprocess_parameters: Any) -> dict[str, Any]:
        """The question and context tokenised as overlapping windows of the context
        (`max_length` tokens each, at most what the model takes, overlapping by `stride`)."""
        question, context = input_.get("question"), input_.get("context")
        if not isinstance(question, str) or not isinstance(context, str) or not context.strip():
            raise ValueError("question answering needs a question and a non-empty context")
        assert self.tokenizer is not None
        max_length = preprocess_parameters.get("max_length", MAX_LENGTH)
        stride = preprocess_parameters.get("stride", STRIDE)
        limits = (
            max_length,
            getattr(self.tokenizer, "model_max_length", None),
            getattr(self.model.config, "max_position_embeddings", None),
        )
        limit = min(n for n in limits if isinstance(n, int) and n > 0)
        encoded = self.tokenizer(
            question.lstrip(),
            context,
            truncation="only_second",
            max_length=limit,
            stride=min(stride, limit // 4),
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
            padding=True,
            return_tensors="pt",
        )
        offsets = [
            [
                tuple(o) if s == 1 else None
                for o, s in zip(window, encoded.sequence_ids(i), strict=True)
            ]
            for i, window in enumerate(encoded.pop("offset_mapping").tolist())
        ]
        encoded.pop("overflow_to_sample_mapping", None)
        return {"model_inputs": dict(encoded), "offsets": offsets, "context": context}

    def _forward(self, input_tensors: dict[str, Any], **forward_parameters: Any) -> Any:
        output = self.model(**input_tensors["model_inputs"])
        return {
            "start": output.start_logits,
            "end": output.end_logits,
            "offsets": input_tensors["offsets"],
            "context": input_tensors["context"],
        }

    def postprocess(self, model_outputs: Any, **postprocess_parameters: Any) -> Any:
        """The most likely span over all windows (at most `max_answer_tokens` long): start and
        end in the context, with the probability of that start times that of that end."""
        outputs = model_outputs
        max_answer_tokens = postprocess_parameters.get("max_answer_tokens", MAX_ANSWER_TOKENS)
        starts = outputs["start"].float().softmax(-1).tolist()
        ends = outputs["end"].float().softmax(-1).tolist()
        best = (-1.0, 0, 0)
        for window, offsets in enumerate(outputs["offsets"]):
            positions = [i for i, o in enumerate(offsets) if o is not None]
            for s in positions:
                for e in positions:
                    if s <= e < s + max_answer_tokens:
                        score = starts[window][s] * ends[window][e]
                        if score > best[0]:
                            best = (score, offsets[s][0], offsets[e][1])
        score, start, end = best
        return {
            "answer": outputs["context"][start:end],
            "score": max(score, 0.0),
            "start": start,
            "end": end,
        }
