"""Text from a causal LM, the same way for `kubetune predict` and `kubetune chat`: a chat goes
through the tokenizer's chat template, plain text is continued; generation follows the model's
generation config (greedy unless it says otherwise) up to `max_new_tokens`, and the text can be
streamed piece by piece as it is generated."""

from __future__ import annotations

import threading
from typing import IO, Any

DEFAULT_MAX_NEW_TOKENS = 64


def has_chat_template(tokenizer: Any) -> bool:
    """Whether the tokenizer has a chat template (then prompts go to the model as chats)."""
    return bool(getattr(tokenizer, "chat_template", None))


def generate_text(
    model: Any,
    tokenizer: Any,
    prompt: str | list[dict[str, str]],
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
    out: IO[str] | None = None,
) -> str:
    """The text the model adds to `prompt` (a chat: a list of {"role", "content"}; or text),
    special tokens left out, stripped; with `out`, each piece is also written there as it is
    generated, then a newline."""
    from transformers import TextIteratorStreamer

    if isinstance(prompt, list):
        inputs = tokenizer.apply_chat_template(
            prompt, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
    else:
        inputs = tokenizer(prompt, return_tensors="pt")
    inputs = inputs.to(model.device)
    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
    failure: list[BaseException] = []

    def generate() -> None:
        try:
            model.generate(**inputs, streamer=streamer, max_new_tokens=max_new_tokens)
        except BaseException as error:  # handed to the caller; the streamer must still end
            failure.append(error)
            streamer.end()

    worker = threading.Thread(target=generate, daemon=True)
    worker.start()
    pieces = []
    for piece in streamer:
        pieces.append(piece)
        if out is not None:
            out.write(piece)
            out.flush()
    worker.join()
    if out is not None:
        out.write("\n")
        out.flush()
    if failure:
        raise failure[0]
    return "".join(pieces).strip()
