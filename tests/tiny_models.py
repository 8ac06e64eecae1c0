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


def tiny_tokenizer(path: str | Path, words: list[str] = VOCAB):
    """A WordPiece BERT tokenizer over `words` (special tokens first), saved in `path`."""
    from transformers import BertTokenizer

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tokenizer = BertTokenizer(vocab={word: i for i, word in enumerate(words)}, do_lower_case=True)
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


def tiny_bert_classifier(path: str | Path, num_labels: int = 2, seed: int = 0, **config) -> Path:
    """A 2-layer BERT for sequence classification with its tokenizer, saved in `path`.

    `config` overrides BertConfig settings (e.g. hidden_dropout_prob=0.0).
    """
    import torch
    from transformers import BertForSequenceClassification

    torch.manual_seed(seed)
    path = Path(path)
    tiny_tokenizer(path)
    model = BertForSequenceClassification(tiny_bert_config(num_labels=num_labels, **config))
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


# --- more tiny models: one per transformer type ------------------------------------------------

NAMES = ["alice", "bob", "carol", "dave", "erin", "frank"]
PLACES = ["paris", "rome", "oslo", "lima"]
QA_WORDS = ["who", "where", "lives", "in", "likes", "?", "."]
WIDE_VOCAB = VOCAB + NAMES + PLACES + QA_WORDS


def tiny_bert_masked_lm(path: str | Path, seed: int = 0, **config) -> Path:
    """A 2-layer BERT with its MLM head and a tokenizer over WIDE_VOCAB (a base for the BERT tasks)."""
    import torch
    from transformers import BertForMaskedLM

    torch.manual_seed(seed)
    path = Path(path)
    tiny_tokenizer(path, WIDE_VOCAB)
    BertForMaskedLM(tiny_bert_config(vocab_size=len(WIDE_VOCAB), **config)).save_pretrained(path)
    return path


CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }} <|end|> {% endfor %}"
    "{% if add_generation_prompt %}<|assistant|> {% endif %}"
)
# The same chat template with TRL's {% generation %} markers around each assistant turn (its
# end-of-turn included), which SFTConfig(assistant_only_loss=True) needs.
TRAINING_CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'assistant' %}"
    "<|assistant|> {% generation %}{{ m['content'] }} <|end|> {% endgeneration %}"
    "{% else %}<|{{ m['role'] }}|> {{ m['content'] }} <|end|> {% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|> {% endif %}"
)
LM_SPECIAL = ["<pad>", "<unk>", "<s>", "</s>", "<|user|>", "<|assistant|>", "<|system|>", "<|end|>"]
LM_WORDS = [
    *LM_SPECIAL,
    *POSITIVE,
    *NEGATIVE,
    *NEUTRAL,
    *NAMES,
    *PLACES,
    *QA_WORDS,
    "say",
    "answer",
    ":",
    "###",
]


def tiny_word_tokenizer(path: str | Path, chat_template: bool = True):
    """A word-level fast tokenizer (split on white space and punctuation) with a chat template."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(dict.fromkeys(LM_WORDS))}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(r"<\|[a-z]+\|>", behavior="isolated"),
            pre_tokenizers.WhitespaceSplit(),
        ]
    )
    backend.post_processor = processors.TemplateProcessing(
        single="<s> $A", special_tokens=[("<s>", vocab["<s>"])]
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
    )
    if chat_template:
        tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(path)
    return tokenizer


def tiny_llama(path: str | Path, seed: int = 0, chat_template: bool = True) -> Path:
    """A 2-layer Llama-style decoder with a word-level tokenizer (and chat template)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tokenizer = tiny_word_tokenizer(path, chat_template)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=128,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    LlamaForCausalLM(config).save_pretrained(path)
    return path


def tiny_vit(path: str | Path, num_labels: int = 2, seed: int = 0) -> Path:
    """A 2-layer ViT over 8x8 images (4x4 patches) with its image processor."""
    import torch
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    torch.manual_seed(seed)
    path = Path(path)
    config = ViTConfig(
        image_size=8,
        patch_size=4,
        num_channels=3,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=num_labels,
    )
    ViTForImageClassification(config).save_pretrained(path)
    ViTImageProcessor(
        size={"height": 8, "width": 8}, image_mean=[0.5] * 3, image_std=[0.5] * 3
    ).save_pretrained(path)
    return path


# --- more tiny datasets -------------------------------------------------------------------------


def ner_rows(n: int, seed: int = 0) -> list[dict]:
    """Word lists tagged B-PER on names and B-LOC/I-LOC on 'in <place>'-style places, O elsewhere."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        tokens, tags = [], []
        for _ in range(rng.randint(2, 4)):
            kind = rng.random()
            if kind < 0.3:
                tokens.append(rng.choice(NAMES))
                tags.append("B-PER")
            elif kind < 0.5:
                tokens += [rng.choice(PLACES), rng.choice(PLACES)]
                tags += ["B-LOC", "I-LOC"]
            else:
                tokens.append(rng.choice(NEUTRAL))
                tags.append("O")
        rows.append({"tokens": tokens, "ner_tags": tags})
    return rows


def squad_rows(n: int, seed: int = 0) -> list[dict]:
    """'<name> lives in <place> .' contexts with where/who questions; answers in SQuAD format."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        name, place = rng.choice(NAMES), rng.choice(PLACES)
        filler = " ".join(rng.sample(NEUTRAL, 3))
        context = f"{filler} {name} lives in {place} . {' '.join(rng.sample(NEUTRAL, 2))}"
        if i % 2:
            question, answer = f"where {name} lives ?", place
        else:
            question, answer = f"who lives in {place} ?", name
        start = context.index(f"{name} lives in {place}") + (
            len(f"{name} lives in ") if i % 2 else 0
        )
        rows.append(
            {
                "id": str(i),
                "question": question,
                "context": context,
                "answers": {"text": [answer], "answer_start": [start]},
            }
        )
    return rows


def lm_rows(n: int, seed: int = 0) -> list[dict]:
    """Repetitive plain text a tiny decoder learns quickly."""
    rng = random.Random(seed)
    return [
        {"text": f"{rng.choice(NAMES)} lives in {rng.choice(PLACES)} . it is very good ."}
        for _ in range(n)
    ]


def chat_rows(n: int, seed: int = 0) -> list[dict]:
    """Chats whose assistant answer is the place a person lives in."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        name, place = rng.choice(NAMES), rng.choice(PLACES)
        rows.append(
            {
                "messages": [
                    {"role": "user", "content": f"{name} lives in {place} . where {name} lives ?"},
                    {"role": "assistant", "content": f"{name} lives in {place} ."},
                ]
            }
        )
    return rows


def prompt_completion_rows(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    return [
        {"prompt": f"say {w} :", "completion": f" {w} {w} ."}
        for w in (rng.choice(POSITIVE) for _ in range(n))
    ]


def instruction_rows(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        name = rng.choice(NAMES)
        rows.append(
            {
                "instruction": f"where {name} lives ?",
                "input": "" if i % 2 else f"{name} lives in oslo",
                "output": "oslo",
            }
        )
    return rows


def preference_rows(n: int, seed: int = 0) -> list[dict]:
    """Prompts whose chosen answer is always 'good good .' and rejected one 'bad bad .': a
    preference a tiny decoder learns in a few steps."""
    rng = random.Random(seed)
    return [
        {
            "prompt": f"{rng.choice(NAMES)} likes the {rng.choice(['movie', 'film', 'story'])} ? answer :",
            "chosen": " good good .",
            "rejected": " bad bad .",
        }
        for _ in range(n)
    ]


def kto_rows(n: int, seed: int = 0) -> list[dict]:
    """preference_rows unpaired for KTO: desirable and undesirable completions by turns."""
    rows = []
    for i, row in enumerate(preference_rows(n, seed)):
        good = i % 2 == 0
        completion = row["chosen"] if good else row["rejected"]
        rows.append({"prompt": row["prompt"], "completion": completion, "label": good})
    return rows


def image_rows(n: int, seed: int = 0) -> list[dict]:
    """8x8 RGB images: label 1 ('blue') mostly blue, label 0 ('red') mostly red, with noise."""
    from PIL import Image

    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = i % 2
        pixels = []
        for _ in range(64):
            strong, weak = rng.randint(150, 255), rng.randint(0, 100)
            pixels.append(
                (weak, rng.randint(0, 80), strong) if label else (strong, rng.randint(0, 80), weak)
            )
        image = Image.new("RGB", (8, 8))
        image.putdata(pixels)
        rows.append({"image": image, "label": label})
    return rows
