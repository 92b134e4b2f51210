"""Padding masks and masked pooling shared by the heads that are parallel over positions.

A head's logit for a review must not depend on how much padding its batch carries: every
position at or past a review's length is masked out of what the head sums, maxes or attends to.
"""

from __future__ import annotations

import torch


def padding_mask(lengths: torch.Tensor | None, batch: int, steps: int,
                 device: torch.device) -> torch.Tensor:
    """[batch, steps] bool, True at real tokens (all True when `lengths` is None)."""
    if lengths is None:
        return torch.ones(batch, steps, dtype=torch.bool, device=device)
    return torch.arange(steps, device=device)[None, :] < lengths.to(device)[:, None]


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of x [B, T, D] over each review's real positions (mask [B, T] bool)."""
    m = mask.unsqueeze(-1).to(x.dtype)
    return (x * m).sum(1) / m.sum(1).clamp_min(1.0)
