"""The formats of causal-LM samples, and which of their tokens the loss covers.

A row of any format (plain text, prompt/completion, Alpaca, ShareGPT, OpenAI-style messages)
becomes a `Sample`; kubetune's own training renders it to one text with the character spans of
its answers (`Rendered`) and tokenises that into input ids and labels (`encode`), masked as
`LossOn` asks. TRL's methods get the sample in TRL's columns instead (`trl_row`) and mask it
themselves. Everything here is a pure function of a row and a tokenizer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubetune.contract.causal_lm import DataFormat, LossOn
from kubetune.runtime.errors import TrainerError
from kubetune.runtime.tasks.base import IGNORE_INDEX

ALPACA_PROMPT = (
    "Below is an instruction that describes a task{with_input}. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n{input_block}### Response:\n"
)
# The roles whose columns each format needs; detection takes the first format whose columns are
# all found (ShareGPT and messages share theirs: each message shows which one it is).
FORMAT_ROLES: dict[DataFormat, tuple[str, ...]] = {
    DataFormat.MESSAGES: ("messages",),
    DataFormat.SHAREGPT: ("messages",),
    DataFormat.PROMPT_COMPLETION: ("prompt", "completion"),
    DataFormat.ALPACA: ("instruction", "output"),
    DataFormat.TEXT: ("text",),
}
CHAT_FORMATS = (DataFormat.MESSAGES, DataFormat.SHAREGPT)
# ShareGPT speakers that are not chat-template roles; other names are kept as they are.
SHAREGPT_ROLES = {"human": "user", "gpt": "assistant"}


@dataclass(frozen=True)
class Sample:
    """One row in a single shape: a chat (`messages`), a prompt with its completion, or text."""

    messages: list[dict[str, str]] | None = None
    prompt: str | None = None
    completion: str | None = None
    text: str | None = None


@dataclass(frozen=True)
class Rendered:
    """A sample as one text, with the character spans of its answers (in order), and whether a
    chat template wrote it (it then holds its special tokens itself)."""

    text: str
    answers: tuple[tuple[int, int], ...]
    templated: bool = False


def default_loss_on(format: DataFormat) -> LossOn:
    """What the loss covers when the user does not say: all of plain text, else the answers."""
    return LossOn.ALL if format is DataFormat.TEXT else LossOn.ASSISTANT


def sample_of(
    row: dict[str, Any], format: DataFormat, columns: dict[str, str | None], named: bool
) -> Sample:
    """The sample in `row`, read from the columns of its format.

    Args:
        named: the user named the format (a chat's messages must then be of that form).

    Raises:
        TrainerError: a chat value is not a list of messages (of the named form).
    """

    def value(role: str) -> Any:
        column = columns.get(role)
        return row[column] if column is not None else None

    if format is DataFormat.TEXT:
        return Sample(text=str(value("text")))
    if format is DataFormat.PROMPT_COMPLETION:
        return Sample(prompt=str(value("prompt")), completion=str(value("completion")))
    if format is DataFormat.ALPACA:
        return Sample(
            prompt=alpaca_prompt(str(value("instruction")), str(value("input") or "")),
            completion=str(value("output")),
        )
    return Sample(
        messages=chat_messages(
            value("messages"), str(columns.get("messages")), format if named else None
        )
    )


def alpaca_prompt(instruction: str, input: str = "") -> str:
    """The Alpaca prompt of an instruction and its optional input."""
    extra = input.strip()
    return ALPACA_PROMPT.format(
        with_input=", paired with an input that provides further context" if extra else "",
        instruction=instruction.strip(),
        input_block=f"### Input:\n{extra}\n\n" if extra else "",
    )


def chat_messages(value: Any, column: str, form: DataFormat | None = None) -> list[dict[str, str]]:
    """A chat as {'role', 'content'} messages, from OpenAI-style messages or ShareGPT's
    {'from', 'value'} ('human' becomes 'user', 'gpt' 'assistant').

    Args:
        form: the form every message must have (None: either, message by message).

    Raises:
        TrainerError: the value is not a non-empty list of messages of the form.
    """
    allowed = {
        DataFormat.MESSAGES: "{'role', 'content'} messages",
        DataFormat.SHAREGPT: "ShareGPT {'from', 'value'} messages",
        None: "{'role', 'content'} or ShareGPT {'from', 'value'} messages",
    }[form]
    messages = list(value) if isinstance(value, list | tuple) else None
    converted = []
    for message in messages or []:
        message = dict(message) if isinstance(message, dict) else {}
        if form is not DataFormat.SHAREGPT and {"role", "content"} <= set(message):
            converted.append(message)
        elif form is not DataFormat.MESSAGES and {"from", "value"} <= set(message):
            role = SHAREGPT_ROLES.get(message["from"], message["from"])
            rest = {k: v for k, v in message.items() if k not in ("from", "value")}
            converted.append({**rest, "role": role, "content": message["value"]})
        else:
            messages = None
            break
    if not messages:
        raise TrainerError(
            f"column {column!r}: each value must be a list of {allowed}; got {value!r}"
        )
    return converted


def trl_row(sample: Sample) -> dict[str, Any]:
    """The sample in the columns TRL's SFT reads: text, prompt and completion, or messages."""
    if sample.messages is not None:
        return {"messages": sample.messages}
    if sample.prompt is not None:
        return {"prompt": sample.prompt, "completion": sample.completion or ""}
    return {"text": sample.text or ""}


# --- kubetune's own tokenisation -----------------------------------------------------------------


def render(sample: Sample, tokenizer: Any) -> Rendered:
    """The sample as one text with its answers' spans; chats through the tokenizer's chat template
    (or, without one, 'role: content' lines).

    Raises:
        TrainerError: the chat template renders an earlier part of a chat differently from the
            whole (answers could not be found in it).
    """
    if sample.messages is not None:
        if getattr(tokenizer, "chat_template", None):
            return render_with_template(sample.messages, tokenizer)
        return render_role_lines(sample.messages)
    if sample.prompt is not None:
        text = sample.prompt + (sample.completion or "")
        return Rendered(text, ((len(sample.prompt), len(text)),))
    return Rendered(sample.text or "", ())


def render_with_template(messages: list[dict[str, str]], tokenizer: Any) -> Rendered:
    """A chat through the chat template: each assistant turn runs from the end of the chat before
    it (with the generation prompt) to the end of the chat up to it (its end-of-turn included)."""

    def text(part: list[dict[str, str]], prompt: bool = False) -> str:
        if not part:
            return ""
        rendered: str = tokenizer.apply_chat_template(
            part, tokenize=False, add_generation_prompt=prompt
        )
        return rendered

    full = text(messages)
    answers = []
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        before, through = text(messages[:i], prompt=True), text(messages[: i + 1])
        if not (full.startswith(before) and full.startswith(through)):
            raise TrainerError(
                "chat template: it renders the start of a chat differently from the whole chat, "
                f"so the assistant's turns cannot be found in it (turn {i} of {messages!r}); give "
                "a template that keeps earlier turns as they are: "
                "HuggingFaceTrainerParams(chat_template=...)"
            )
        answers.append((len(before), len(through)))
    return Rendered(full, tuple(answers), templated=True)


def render_role_lines(messages: list[dict[str, str]]) -> Rendered:
    """A chat as 'role: content' lines (for a tokenizer without a chat template)."""
    text, answers = "", []
    for message in messages:
        head = f"{message['role']}: "
        start = len(text) + len(head)
        text += f"{head}{message['content']}\n"
        if message["role"] == "assistant":
            answers.append((start, len(text)))
    return Rendered(text, tuple(answers))


def encode(
    rendered: Rendered, tokenizer: Any, loss_on: LossOn, max_length: int
) -> tuple[list[int], list[int]]:
    """(input_ids, labels) of a rendered sample; labels are IGNORE_INDEX outside the tokens the
    loss covers. Text that no template made gets the tokenizer's special tokens and ends with
    its end-of-sequence token, which belongs to an answer ending there.

    Raises:
        TrainerError: the loss is to cover answers and the sample has none.
    """
    special = not rendered.templated
    ids = token_ids(tokenizer, rendered.text, special)
    if special:
        ids = with_eos(ids, tokenizer.eos_token_id)
    if loss_on is LossOn.ALL:
        return ids[:max_length], list(ids[:max_length])
    spans = rendered.answers if loss_on is LossOn.ASSISTANT else rendered.answers[-1:]
    if not spans:
        raise TrainerError(
            f"loss_on={str(loss_on)!r}: a sample has no answer (no assistant turn) to train on: "
            f"{rendered.text[:200]!r}; give every sample an answer, or set loss_on='all'"
        )

    def boundary(char: int) -> int:
        if char >= len(rendered.text):
            return len(ids)
        return common_prefix(token_ids(tokenizer, rendered.text[:char], special), ids)

    trained = [False] * len(ids)
    for start, end in spans:
        for i in range(boundary(start), boundary(end)):
            trained[i] = True
    labels = [t if keep else IGNORE_INDEX for t, keep in zip(ids, trained, strict=True)]
    return ids[:max_length], labels[:max_length]


def token_ids(tokenizer: Any, text: str, special: bool) -> list[int]:
    """The token ids of `text` (with the tokenizer's special tokens when `special`)."""
    return list(tokenizer(text, add_special_tokens=special)["input_ids"])


def with_eos(ids: list[int], eos: int | None) -> list[int]:
    """`ids` ending in the end-of-sequence token `eos` (added when missing)."""
    return [*ids, eos] if eos is not None and (not ids or ids[-1] != eos) else ids


def common_prefix(a: list[int], b: list[int]) -> int:
    """How many leading items `a` and `b` share."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n
