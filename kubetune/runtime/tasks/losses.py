"""Token-level cross entropy normalised by the token count of the whole global batch."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from kubetune.runtime.tasks.base import IGNORE_INDEX


def token_cross_entropy(
    outputs: Any, labels: torch.Tensor, num_items_in_batch: torch.Tensor | int | None = None
) -> torch.Tensor:
    """Summed cross entropy over labelled tokens / the labelled tokens of the global batch."""
    return _summed_cross_entropy(outputs["logits"], labels, num_items_in_batch)


def shifted_token_cross_entropy(
    outputs: Any, labels: torch.Tensor, num_items_in_batch: torch.Tensor | int | None = None
) -> torch.Tensor:
    """As `token_cross_entropy`, predicting token t+1 from position t (causal LM)."""
    logits = outputs["logits"][..., :-1, :]
    return _summed_cross_entropy(logits, labels[..., 1:], num_items_in_batch)


def _summed_cross_entropy(
    logits: torch.Tensor, labels: torch.Tensor, num_items: torch.Tensor | int | None
) -> torch.Tensor:
    labels = labels.to(logits.device)
    total = F.cross_entropy(
        logits.reshape(-1, logits.size(-1)).float(),
        labels.reshape(-1),
        ignore_index=IGNORE_INDEX,
        reduction="sum",
    )
    if num_items is None:
        num_items = labels.ne(IGNORE_INDEX).sum()
    if torch.is_tensor(num_items):
        num_items = num_items.to(total.device)
        return total / num_items.clamp(min=1)
    return total / max(int(num_items), 1)
