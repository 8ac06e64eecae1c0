"""Baseline: plain Hugging Face Trainer + PEFT, every sample padded to max_length.

This is what Kubeflow Training Operator V1's trainer does (tokenizer(padding="max_length",
truncation=True), then the Trainer's default collator). See hf_common.py for the arguments.
"""

from __future__ import annotations

from typing import Any

from hf_common import main, text_tokenizer


def make_collator(tokenizer: Any, task: str) -> Any:
    """Every sample already has max_length tokens: classification stacks them as they are;
    causal LM copies input_ids to labels, with padding ignored by the loss."""
    from transformers import DataCollatorForLanguageModeling, default_data_collator

    if task == "causal-lm":
        return DataCollatorForLanguageModeling(tokenizer, mlm=False)
    return default_data_collator


if __name__ == "__main__":
    main(__doc__ or "", text_tokenizer(padding="max_length"), make_collator)
