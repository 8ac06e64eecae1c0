"""One input through a job's pipeline, and its answer as a line of text or JSON (`kubetune
predict`): labels with scores, entities, an answer span, generated text, mask fillings."""

from __future__ import annotations

import json
from typing import Any

from kubetune.contract.spec import TransformerType
from kubetune.inference.generation import DEFAULT_MAX_NEW_TOKENS, generate_text, has_chat_template


def answer(
    pipe: Any,
    transformer_type: TransformerType,
    text: str,
    *,
    context: str | None = None,
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
) -> Any:
    """The pipeline's output for one input, as the task calls for it.

    A causal LM's prompt is sent as a user's message when the tokenizer has a chat template
    (else as text to continue) and the output is the new text only, generated as `kubetune chat`
    generates it (`generation.generate_text`); question answering needs
    `context`; a masked LM's text must hold the mask token.

    Raises:
        ValueError: question answering without a context, fill-mask without the mask token.
    """
    if transformer_type == TransformerType.SEQUENCE_CLASSIFICATION:
        return pipe(text, top_k=None)
    if transformer_type == TransformerType.QUESTION_ANSWERING:
        if not context:
            raise ValueError(
                "a question-answering model answers from a context: give it (--context TEXT)"
            )
        return pipe(question=text, context=context)
    if transformer_type == TransformerType.CAUSAL_LM:
        chat = [{"role": "user", "content": text}]
        prompt = chat if has_chat_template(pipe.tokenizer) else text
        return generate_text(pipe.model, pipe.tokenizer, prompt, max_new_tokens)
    if transformer_type == TransformerType.MASKED_LM:
        mask = pipe.tokenizer.mask_token
        if mask is None or mask not in text:
            raise ValueError(f"a masked LM fills in its mask token {mask!r}: put it in the text")
    return pipe(text)


def answer_text(transformer_type: TransformerType, output: Any) -> str:
    """A pipeline's output for one input as one readable line (a causal LM's text as it is)."""
    if transformer_type == TransformerType.CAUSAL_LM:
        return str(output)
    if transformer_type == TransformerType.QUESTION_ANSWERING:
        return f"{output['answer']} ({output['score']:.3f})"
    if transformer_type == TransformerType.TOKEN_CLASSIFICATION:
        entities = [f"{e['word']}: {e['entity_group']} {e['score']:.3f}" for e in output]
        return "; ".join(entities) if entities else "(no entities)"
    if transformer_type == TransformerType.MASKED_LM:
        return ", ".join(f"{f['token_str'].strip()} {f['score']:.3f}" for f in output)
    return ", ".join(f"{label['label']} {label['score']:.3f}" for label in output)


def answer_json(text: str, output: Any) -> str:
    """One JSON line: {"input": text, "output": the pipeline's output}."""
    return json.dumps({"input": text, "output": output}, default=_plain)


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else str(value)
