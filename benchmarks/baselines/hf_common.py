"""What the two baseline scripts share: a plain Hugging Face Trainer + PEFT fine-tuning run.

Independent of kubetune: only transformers, peft and datasets. The scripts differ in how they
tokenise and pad (`pad_max_length.py`: every sample padded to max_length, as Kubeflow Training
Operator V1's trainer does; `pad_dynamic.py`: padding to the longest sample of each batch).

Command line (both scripts):
    --model DIR            a saved model and tokenizer
    --dataset DIR          a DatasetDict saved with save_to_disk, with a 'train' split
    --task seq-cls|causal-lm
    --max-length N         truncation length (and the padded length of pad_max_length.py)
    --training-args JSON   keyword arguments of transformers.TrainingArguments
    --lora JSON|null       keyword arguments of peft.LoraConfig; null trains all parameters
    --metrics-out PATH     where the train metrics are written as JSON
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Tokenises a batch of rows (dict of columns) into model inputs.
Tokenize = Callable[[Any, dict[str, list[Any]], int], dict[str, Any]]
# Builds the data collator from the tokenizer and the task.
MakeCollator = Callable[[Any, str], Any]


def parse_args(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--model", required=True)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--task", required=True, choices=["seq-cls", "causal-lm"])
    parser.add_argument("--max-length", type=int, required=True)
    parser.add_argument("--training-args", required=True, type=json.loads)
    parser.add_argument("--lora", default="null", type=json.loads)
    parser.add_argument("--metrics-out", required=True, type=Path)
    return parser.parse_args()


def text_tokenizer(padding: bool | str) -> Tokenize:
    """Tokenises 'text' (with 'label' for classification; with EOS appended for causal LM)."""

    def tokenize(tokenizer: Any, batch: dict[str, list[Any]], max_length: int) -> dict[str, Any]:
        if "label" in batch:
            encoded = tokenizer(
                batch["text"], truncation=True, max_length=max_length, padding=padding
            )
            encoded["labels"] = batch["label"]
            return dict(encoded)
        # Causal LM: the text followed by EOS (so the model learns where documents end), truncated.
        ids = [
            [*x, tokenizer.eos_token_id][:max_length] for x in tokenizer(batch["text"])["input_ids"]
        ]
        padded = tokenizer.pad({"input_ids": ids}, padding=padding, max_length=max_length)
        return {"input_ids": padded["input_ids"], "attention_mask": padded["attention_mask"]}

    return tokenize


def main(description: str, tokenize: Tokenize, make_collator: MakeCollator) -> None:
    """Loads model and data, applies LoRA, trains with the Trainer, writes the train metrics."""
    from datasets import load_from_disk
    from peft import LoraConfig, get_peft_model
    from transformers import (
        AutoModelForCausalLM,
        AutoModelForSequenceClassification,
        AutoTokenizer,
        Trainer,
        TrainingArguments,
    )

    args = parse_args(description)
    started = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    train = load_from_disk(args.dataset)["train"]
    if args.task == "seq-cls":
        model = AutoModelForSequenceClassification.from_pretrained(
            args.model, num_labels=len(set(train["label"]))
        )
        task_type = "SEQ_CLS"
    else:
        model = AutoModelForCausalLM.from_pretrained(args.model)
        task_type = "CAUSAL_LM"
    if args.lora is not None:
        model = get_peft_model(model, LoraConfig(**{"task_type": task_type, **args.lora}))

    features = train.map(
        lambda batch: tokenize(tokenizer, batch, args.max_length),
        batched=True,
        remove_columns=train.column_names,
        keep_in_memory=True,
    )
    trainer = Trainer(
        model=model,
        args=TrainingArguments(**args.training_args),
        train_dataset=features,
        data_collator=make_collator(tokenizer, args.task),
        processing_class=tokenizer,
    )
    result = trainer.train()
    metrics = dict(result.metrics)
    metrics.update(
        global_step=trainer.state.global_step,
        train_samples=len(features),
        # Tokens the model saw that are not padding.
        train_tokens=sum(sum(mask) for mask in features["attention_mask"]),
        process_seconds=round(time.perf_counter() - started, 3),
    )
    args.metrics_out.parent.mkdir(parents=True, exist_ok=True)
    args.metrics_out.write_text(json.dumps(metrics, indent=1))
    print(json.dumps(metrics))
