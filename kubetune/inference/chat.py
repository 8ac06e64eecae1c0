"""`kubetune chat`: an interactive conversation with a causal LM, through its tokenizer's chat
template, each reply printed token by token as it is generated.

Every line typed is the user's next message (the whole conversation goes to the model each
time); `/reset` starts a new conversation, `/exit` or end of input (Ctrl-D) quits.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import IO, Any

from kubetune.inference.generation import DEFAULT_MAX_NEW_TOKENS, generate_text, has_chat_template

PROMPT = "> "
EXIT_COMMANDS = ("/exit", "/quit")
RESET_COMMAND = "/reset"


def chat(
    pipe: Any,
    *,
    read: Callable[[str], str] = input,
    out: IO[str] | None = None,
    system: str | None = None,
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
) -> list[dict[str, str]]:
    """Talks with the pipeline's model until `/exit` or end of input; returns the conversation.

    Args:
        read: prints its argument (the prompt) and returns the next line typed; raises EOFError
            at the end of input.
        out: where replies are written (default: stdout).
        system: a system message opening every conversation.

    Raises:
        ValueError: the tokenizer has no chat template.
    """
    stream = out if out is not None else sys.stdout
    if not has_chat_template(pipe.tokenizer):
        raise ValueError(
            "the model's tokenizer has no chat template, so there is no way to tell it who "
            "says what; `kubetune predict` continues plain text instead"
        )
    opening = [{"role": "system", "content": system}] if system else []
    messages = list(opening)
    while True:
        try:
            line = read(PROMPT).strip()
        except EOFError:
            stream.write("\n")
            return messages
        if line in EXIT_COMMANDS:
            return messages
        if line == RESET_COMMAND:
            messages = list(opening)
            continue
        if not line:
            continue
        messages.append({"role": "user", "content": line})
        reply = generate_text(pipe.model, pipe.tokenizer, messages, max_new_tokens, out=stream)
        messages.append({"role": "assistant", "content": reply})
