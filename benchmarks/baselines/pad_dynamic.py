"""Baseline: plain Hugging Face Trainer + PEFT with dynamic padding.

Samples are tokenised without padding; the collator pads each batch to its longest sample
(DataCollatorWithPadding for classification, DataCollatorForLanguageModeling for causal LM).
See hf_common.py for the arguments.
"""

from __future__ import annotations

from typing import Any

from hf_common import main, text_tokenizer


def make_collator(tokenizer: Any, task: str) -> Any:
    """Pads each batch to its longest sample; for causal LM, labels are input_ids with padding ignored."""
    from transformers import DataCollatorForLanguageModeling, DataCollatorWithPadding

    if task == "causal-lm":
        return DataCollatorForLanguageModeling(tokenizer, mlm=False)
    return DataCollatorWithPadding(tokenizer)


if __name__ == "__main__":
    main(__doc__ or "", text_tokenizer(padding=False), make_collator)
