"""The binary cross-entropy of the paper's Eq. 2."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def bce_loss(positive_scores: Tensor, negative_scores: Tensor, weights: Tensor | None) -> Tensor:
    """Eq. 2 averaged over all triples: ``-log s(pos) - w * log(1 - s(neg))``.

    ``positive_scores``: shape (B,) logits; ``negative_scores``: (B, K) logits; ``weights``:
    (B, K) per-negative weights averaging 1 per positive, or None for ones. ``softplus(-x)`` is
    ``-log(sigmoid(x))`` computed without overflow.
    """
    positive = F.softplus(-positive_scores)
    negative = F.softplus(negative_scores)
    if weights is not None:
        negative = negative * weights
    return (positive.sum() + negative.sum()) / (positive.numel() + negative.numel())
