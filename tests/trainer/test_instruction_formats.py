"""Causal-LM samples of every format, token by token: which tokens the loss covers with each
`loss_on` (kubetune's own training), and what TRL's SFT trains on once kubetune has put the
samples in TRL's columns. Pure functions and in-process trainers on a word-level tokenizer;
nothing is trained."""

from __future__ import annotations

import pytest

from kubetune.contract.causal_lm import DataFormat, LossOn, TrainingMethod
from kubetune.runtime.errors import TrainerError
from kubetune.runtime.tasks import TaskSettings, task_for
from kubetune.runtime.tasks.base import IGNORE_INDEX, MapCache
from kubetune.runtime.tasks.causal_lm import SampleEncoder
from kubetune.runtime.tasks.instruction_formats import alpaca_prompt, chat_messages, trl_row
from tests import tiny_models as tm

CHAT = [
    {"role": "system", "content": "say the answer"},
    {"role": "user", "content": "where bob lives ?"},
    {"role": "assistant", "content": "oslo ."},
    {"role": "user", "content": "where alice lives ?"},
    {"role": "assistant", "content": "rome ."},
]
SHAREGPT = [
    {"from": {"role": "user", "assistant": "gpt"}.get(m["role"], m["role"]), "value": m["content"]}
    for m in CHAT
]
SHAREGPT[1]["from"] = "human"
# The chat through tiny_models.CHAT_TEMPLATE, one token per word.
CHAT_TOKENS = (
    "<s> <|system|> say the answer <|end|> <|user|> where bob lives ? <|end|> "
    "<|assistant|> {oslo} <|end|> <|user|> where alice lives ? <|end|> <|assistant|> {rome} <|end|>"
)


@pytest.fixture(scope="module")
def tokenizers(tmp_path_factory):
    from transformers import AutoTokenizer

    with_template, without = tmp_path_factory.mktemp("tok"), tmp_path_factory.mktemp("plain")
    tm.tiny_word_tokenizer(with_template)
    tm.tiny_word_tokenizer(without, chat_template=False)
    return AutoTokenizer.from_pretrained(with_template), AutoTokenizer.from_pretrained(without)


@pytest.fixture(scope="module")
def tokenizer(tokenizers):
    return tokenizers[0]


def encoder(tokenizer, columns, loss_on=None, data_format=None, **settings) -> SampleEncoder:
    task = task_for(
        "AutoModelForCausalLM", TaskSettings(data_format=data_format, loss_on=loss_on, **settings)
    )
    task.resolve_columns(columns)
    return SampleEncoder(
        tokenizer,
        task.format,
        task.columns,
        max_length=64,
        loss_on=loss_on,
        named=data_format is not None,
    )


def marked(tokenizer, ids: list[int], labels: list[int]) -> str:
    """The tokens, each the loss covers in [brackets]; a covered token's label is its id."""
    tokens = tokenizer.convert_ids_to_tokens(ids)
    assert len(labels) == len(ids)
    assert all(label in (i, IGNORE_INDEX) for i, label in zip(ids, labels, strict=True))
    return " ".join(
        f"[{t}]" if label != IGNORE_INDEX else t for t, label in zip(tokens, labels, strict=True)
    )


def chat_marks(answers: tuple[str, ...]) -> str:
    """CHAT_TOKENS with the loss on the answers named ('oslo', 'rome')."""
    text = CHAT_TOKENS
    for answer in ("oslo", "rome"):
        trained = answer in answers
        words = f"{answer} . <|end|>".split()
        text = text.replace(
            f"{{{answer}}} <|end|>", " ".join(f"[{w}]" if trained else w for w in words)
        )
    return text


# --- kubetune's own training: every format with every loss_on ---------------------------------


def test_plain_text_is_trained_on_every_token(tokenizer):
    enc = encoder(tokenizer, ["text"])
    ids, labels = enc({"text": "bob lives in oslo ."})
    assert marked(tokenizer, ids, labels) == "[<s>] [bob] [lives] [in] [oslo] [.] [</s>]"
    assert enc.loss_on is LossOn.ALL
    for loss_on in (LossOn.COMPLETION, LossOn.ASSISTANT):
        with pytest.raises(TrainerError, match=r"plain text \(column 'text'\).*loss_on='all'"):
            encoder(tokenizer, ["text"], loss_on=loss_on)


@pytest.mark.parametrize(
    ("loss_on", "expected"),
    [
        (None, "<s> say good : [good] [.] [</s>]"),
        (LossOn.COMPLETION, "<s> say good : [good] [.] [</s>]"),
        (LossOn.ASSISTANT, "<s> say good : [good] [.] [</s>]"),
        (LossOn.ALL, "[<s>] [say] [good] [:] [good] [.] [</s>]"),
    ],
)
def test_prompt_completion(tokenizer, loss_on, expected):
    ids, labels = encoder(tokenizer, ["prompt", "completion"], loss_on)(
        {"prompt": "say good :", "completion": " good ."}
    )
    assert marked(tokenizer, ids, labels) == expected


@pytest.mark.parametrize("loss_on", [None, LossOn.COMPLETION, LossOn.ASSISTANT, LossOn.ALL])
def test_alpaca(tokenizer, loss_on):
    row = {"instruction": "where bob lives ?", "input": "bob lives in oslo", "output": "oslo"}
    ids, labels = encoder(tokenizer, ["instruction", "input", "output"], loss_on)(row)
    prompt = alpaca_prompt(row["instruction"], row["input"])
    assert (
        "### Instruction:\nwhere bob lives ?" in prompt
        and "### Input:\nbob lives in oslo" in prompt
    )
    assert prompt.endswith("### Response:\n")
    prompt_tokens = len(tokenizer(prompt)["input_ids"])
    assert tokenizer.convert_ids_to_tokens(ids[prompt_tokens:]) == ["oslo", "</s>"]
    if loss_on is LossOn.ALL:
        assert labels == ids
    else:
        assert labels == [IGNORE_INDEX] * prompt_tokens + ids[prompt_tokens:]
    assert "### Input" not in alpaca_prompt("where bob lives ?", "")


@pytest.mark.parametrize(
    ("loss_on", "answers"),
    [
        (None, ("oslo", "rome")),
        (LossOn.ASSISTANT, ("oslo", "rome")),
        (LossOn.COMPLETION, ("rome",)),
        (LossOn.ALL, ()),
    ],
)
@pytest.mark.parametrize(
    ("column", "chat", "data_format"),
    [
        ("messages", CHAT, None),
        ("messages", CHAT, DataFormat.MESSAGES),
        ("conversations", SHAREGPT, None),
        ("conversations", SHAREGPT, DataFormat.SHAREGPT),
    ],
)
def test_chats_through_the_chat_template(tokenizer, loss_on, answers, column, chat, data_format):
    ids, labels = encoder(tokenizer, [column], loss_on, data_format)({column: chat})
    if loss_on is LossOn.ALL:
        assert labels == ids
        assert " ".join(tokenizer.convert_ids_to_tokens(ids)) == chat_marks(())
    else:
        assert marked(tokenizer, ids, labels) == chat_marks(answers)


@pytest.mark.parametrize(
    ("loss_on", "expected"),
    [
        (
            None,
            "<s> <unk> say the answer <unk> where bob lives ? <unk> [oslo] [.] <unk> where alice lives ? <unk> [rome] [.] [</s>]",
        ),
        (
            LossOn.COMPLETION,
            "<s> <unk> say the answer <unk> where bob lives ? <unk> oslo . <unk> where alice lives ? <unk> [rome] [.] [</s>]",
        ),
    ],
)
def test_chats_without_a_chat_template_are_role_lines(tokenizers, loss_on, expected):
    plain = tokenizers[1]
    ids, labels = encoder(plain, ["messages"], loss_on)({"messages": CHAT})
    # 'system: ', 'user: ', 'assistant: ' are unknown words of this vocabulary.
    assert marked(plain, ids, labels) == expected


def test_a_chat_template_given_in_the_params_replaces_the_tokenizers(tmp_path):
    tm.tiny_word_tokenizer(tmp_path, chat_template=False)
    template = "{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }} {% endfor %}"
    template += "{% if add_generation_prompt %}<|assistant|> {% endif %}"
    task = task_for("AutoModelForCausalLM", TaskSettings(chat_template=template))
    tokenizer = task.load_processor(tmp_path)
    assert tokenizer.chat_template == template
    ids, labels = encoder(tokenizer, ["messages"], LossOn.COMPLETION)({"messages": CHAT[1:3]})
    assert marked(tokenizer, ids, labels) == "<|user|> where bob lives ? <|assistant|> [oslo] [.]"


def test_a_chat_without_an_answer_or_of_the_wrong_form_is_refused(tokenizer):
    with pytest.raises(TrainerError, match=r"no answer .* loss_on='all'"):
        encoder(tokenizer, ["messages"])({"messages": CHAT[:2]})
    ids, labels = encoder(tokenizer, ["messages"], LossOn.ALL)({"messages": CHAT[:2]})
    assert labels == ids
    with pytest.raises(TrainerError, match=r"column 'messages'.*\{'role', 'content'\} messages"):
        encoder(tokenizer, ["messages"], data_format=DataFormat.MESSAGES)({"messages": SHAREGPT})
    with pytest.raises(TrainerError, match=r"ShareGPT \{'from', 'value'\} messages"):
        encoder(tokenizer, ["messages"], data_format=DataFormat.SHAREGPT)({"messages": CHAT})
    with pytest.raises(TrainerError, match="got 'hello'"):
        chat_messages("hello", "messages")


def test_a_template_that_rewrites_earlier_turns_is_refused(tmp_path):
    from transformers import AutoTokenizer

    tm.tiny_word_tokenizer(tmp_path)
    tokenizer = AutoTokenizer.from_pretrained(tmp_path)
    # Like templates that drop earlier turns' reasoning: the last message is written differently.
    tokenizer.chat_template = (
        "{% for m in messages %}{% if loop.last %}<|{{ m['role'] }}|> {{ m['content'] }} "
        "{% else %}<|{{ m['role'] }}|> {% endif %}{% endfor %}"
        "{% if add_generation_prompt %}<|assistant|> {% endif %}"
    )
    with pytest.raises(TrainerError, match="renders the start of a chat differently"):
        encoder(tokenizer, ["messages"])({"messages": CHAT})


def test_a_named_format_needs_its_columns_and_wins_over_detection(tokenizer):
    with pytest.raises(TrainerError, match=r"data_format='alpaca': needs the 'instruction'"):
        encoder(tokenizer, ["prompt", "completion"], data_format=DataFormat.ALPACA)
    both = ["text", "prompt", "completion"]
    assert encoder(tokenizer, both).format is DataFormat.PROMPT_COMPLETION
    assert encoder(tokenizer, both, data_format=DataFormat.TEXT).format is DataFormat.TEXT


def test_rows_reach_trl_in_its_columns():
    assert trl_row(
        task_sample(
            ["instruction", "input", "output"], {"instruction": "i", "input": "", "output": "o"}
        )
    ) == {"prompt": alpaca_prompt("i"), "completion": "o"}
    assert trl_row(task_sample(["conversations"], {"conversations": SHAREGPT})) == {
        "messages": CHAT
    }
    assert trl_row(task_sample(["text"], {"text": "t"})) == {"text": "t"}
    kto = task_for(
        "AutoModelForCausalLM",
        TaskSettings(method=TrainingMethod.KTO, columns={"completion": "answer"}),
    )
    kto.resolve_columns(["question", "prompt", "answer", "label"])
    assert kto.trl_row({"question": "q", "prompt": "p", "answer": "a", "label": 1}) == {
        "prompt": "p",
        "completion": "a",
        "label": True,
    }
    with pytest.raises(TrainerError, match=r"KTO labels must be true .*got 'yes'"):
        kto.trl_row({"question": "q", "prompt": "p", "answer": "a", "label": "yes"})
    dpo = task_for("AutoModelForCausalLM", TaskSettings(method=TrainingMethod.DPO))
    dpo.resolve_columns(["chosen", "rejected"])
    assert dpo.trl_row({"chosen": SHAREGPT[2:3], "rejected": "no"}) == {
        "chosen": CHAT[2:3],
        "rejected": "no",
    }
    with pytest.raises(
        TrainerError, match=r"\[prompt\?, chosen, rejected\].*\['prompt', 'completion'\]"
    ):
        dpo.resolve_columns(["prompt", "completion"])


def task_sample(columns, row):
    from kubetune.runtime.tasks.instruction_formats import sample_of

    task = task_for("AutoModelForCausalLM", TaskSettings(method=TrainingMethod.SFT))
    task.resolve_columns(columns)
    return sample_of(row, task.format, task.columns, named=False)


# --- TRL's SFT on kubetune's formats -------------------------------------------------------------


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    return tm.tiny_llama(tmp_path_factory.mktemp("llama"))


def sft_trainer(llama, tmp_path, rows, chat_template=None, **config):
    """An SFTTrainer over rows that kubetune prepared, as the runtime builds it."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM
    from trl import SFTConfig

    from kubetune.runtime.methods import build_trl_trainer

    task = task_for(
        "AutoModelForCausalLM", TaskSettings(method=TrainingMethod.SFT, chat_template=chat_template)
    )
    task.resolve_columns(list(rows[0]))
    tokenizer = task.load_processor(llama)
    model = AutoModelForCausalLM.from_pretrained(llama)
    prepared = task.prepare(Dataset.from_list(rows), None, tokenizer, model, MapCache(None, "t"))
    settings = {"max_length": 64, **config}
    args = SFTConfig(str(tmp_path), bf16=False, use_cpu=True, report_to="none", **settings)
    return build_trl_trainer(TrainingMethod.SFT, args, model, tokenizer, prepared, None, [])


def sft_labels(llama, tmp_path, rows, chat_template=None, **config):
    """What SFTTrainer trains on, for rows that kubetune prepared: (input_ids, labels) of row 0."""
    trainer = sft_trainer(llama, tmp_path, rows, chat_template, **config)
    row = trainer.train_dataset[0]
    return trainer.processing_class, row["input_ids"], row["labels"]


def test_sft_trains_alpaca_and_prompt_completion_on_the_completion(llama, tmp_path):
    row = {"instruction": "where bob lives ?", "input": "", "output": "oslo"}
    tokenizer, ids, labels = sft_labels(llama, tmp_path, [row])
    prompt_tokens = len(tokenizer(alpaca_prompt(row["instruction"]))["input_ids"])
    assert labels == [IGNORE_INDEX] * prompt_tokens + ids[prompt_tokens:]
    assert tokenizer.convert_ids_to_tokens(ids[prompt_tokens:]) == ["oslo", "</s>"]
    _, ids, labels = sft_labels(llama, tmp_path, [row], completion_only_loss=False)
    assert labels == ids
    rows = [{"prompt": "say good :", "completion": " good ."}]
    tokenizer, ids, labels = sft_labels(llama, tmp_path, rows)
    assert marked(tokenizer, ids, labels) == "<s> say good : [good] [.] [</s>]"


def test_sft_on_sharegpt_trains_every_token_or_the_assistant_turns(llama, tmp_path):
    rows = [{"conversations": SHAREGPT}]
    tokenizer, ids, labels = sft_labels(llama, tmp_path, rows)
    assert labels == ids
    assert " ".join(tokenizer.convert_ids_to_tokens(ids)) == chat_marks(()).replace(
        "{", ""
    ).replace("}", " .")
    # assistant_only_loss needs {% generation %} markers: the params' chat_template brings them.
    tokenizer, ids, labels = sft_labels(
        llama, tmp_path, rows, tm.TRAINING_CHAT_TEMPLATE, assistant_only_loss=True
    )
    assert marked(tokenizer, ids, labels) == chat_marks(("oslo", "rome"))


def test_sft_packs_samples_each_kept_apart(llama, tmp_path):
    rows = [{"prompt": "say good :", "completion": " good ."}] * 4  # 7 tokens each
    trainer = sft_trainer(llama, tmp_path, rows, packing=True, max_length=16)
    assert [len(r["input_ids"]) for r in trainer.train_dataset] == [14, 14]
    batch = trainer.data_collator([trainer.train_dataset[0]])
    # No attention mask: each sample attends to itself by its positions, which restart at 0;
    # a sample's first token is no target (it would be predicted from the previous sample).
    assert "attention_mask" not in batch
    assert batch["position_ids"].tolist() == [[*range(7), *range(7)]]
    masked = IGNORE_INDEX
    assert batch["labels"].tolist()[0][:7] == [masked] * 4 + batch["input_ids"].tolist()[0][4:7]
    assert batch["labels"].tolist()[0][7] == masked


def test_sft_on_plain_text_trains_every_token(llama, tmp_path):
    tokenizer, ids, labels = sft_labels(llama, tmp_path, [{"text": "bob lives in oslo ."}])
    assert marked(tokenizer, ids, labels) == "[<s>] [bob] [lives] [in] [oslo] [.] [</s>]"


def test_dpo_with_lora_keeps_one_model_and_disables_the_adapter_for_the_reference(llama, tmp_path):
    from datasets import Dataset
    from peft import LoraConfig, PeftModel
    from transformers import AutoModelForCausalLM
    from trl import DPOConfig

    from kubetune.runtime.lora import prepare_lora
    from kubetune.runtime.methods import build_trl_trainer

    task = task_for("AutoModelForCausalLM", TaskSettings(method=TrainingMethod.DPO))
    task.resolve_columns(["prompt", "chosen", "rejected"])
    tokenizer = task.load_processor(llama)
    model = AutoModelForCausalLM.from_pretrained(llama)
    prepared = task.prepare(
        Dataset.from_list(tm.preference_rows(4)), None, tokenizer, model, MapCache(None, "t")
    )
    args = DPOConfig(str(tmp_path), bf16=False, use_cpu=True, report_to="none", max_length=64)
    model, peft_config = prepare_lora(model, LoraConfig(r=4), task, TrainingMethod.DPO)
    trainer = build_trl_trainer(
        TrainingMethod.DPO, args, model, tokenizer, prepared, peft_config, []
    )
    assert trainer.ref_model is None  # the reference is the model with its adapter disabled
    assert isinstance(trainer.model, PeftModel)
    assert list(trainer.model.peft_config) == ["default"]  # no copy of the adapter either
    assert {"prompt_ids", "chosen_ids", "rejected_ids"} <= set(trainer.train_dataset.column_names)


def test_a_tokenizer_without_an_end_of_sequence_token_takes_the_models(tmp_path):
    """A BERT tokenizer on a decoder (as examples/models/tiny-llama has): TRL appends the
    end-of-sequence token to every answer, and failed on None."""
    from kubetune.runtime.tasks.causal_lm import complete_special_tokens

    tokenizer = tm.tiny_tokenizer(tmp_path)
    assert tokenizer.eos_token is None and tokenizer.pad_token == "[PAD]"
    sep = tokenizer.convert_tokens_to_ids("[SEP]")
    complete_special_tokens(tokenizer, model_stub(sep))
    assert tokenizer.eos_token == "[SEP]" and tokenizer.pad_token == "[PAD]"


def test_trl_gets_no_chat_without_a_chat_template(tokenizers):
    from datasets import Dataset

    task = task_for("AutoModelForCausalLM", TaskSettings(method=TrainingMethod.SFT))
    task.resolve_columns(["messages"])
    with pytest.raises(TrainerError, match=r"method sft: chats \(messages\) need a chat template"):
        task.prepare(
            Dataset.from_list([{"messages": CHAT}]), None, tokenizers[1], model_stub(), None
        )


def model_stub(eos_token_id: int | None = None):
    """A stand-in for a model where only its config's end-of-sequence token is read."""
    from types import SimpleNamespace

    return SimpleNamespace(config=SimpleNamespace(eos_token_id=eos_token_id))
