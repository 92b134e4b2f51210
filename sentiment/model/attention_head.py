"""AttentionHead: one transformer block over the encoder's states, then masked mean pooling,
dropout and a linear layer; the attention inside is the subclass's (Linformer's or kernelised
linear attention), both linear in the review's length.

The block is the standard post-norm encoder layer (Vaswani et al. 2017): the states projected
to ``hidden_dim``, multi-head attention with a residual and LayerNorm, a feed-forward layer
(2 x hidden_dim, GELU) with a residual and LayerNorm. Padded positions are kept out of the
keys and values by the attention and out of the pooling here.
"""

from __future__ import annotations

import torch
from torch import nn

from sentiment.model.masking import masked_mean, padding_mask


class AttentionHead(nn.Module):
    """Subclasses set ``self.config`` and pass their attention module (q, k, v [B, T, h, d],
    mask [B, T] -> [B, T, h, d])."""

    def __init__(self, embedding_dim: int, hidden_dim: int, n_heads: int, output_dim: int,
                 dropout: float, attention: nn.Module):
        super().__init__()
        if hidden_dim % n_heads:
            raise ValueError(f"hidden_dim={hidden_dim} is not a multiple of attention_heads="
                             f"{n_heads}")
        self.n_heads = n_heads
        self.inp = nn.Linear(embedding_dim, hidden_dim)
        self.qkv = nn.Linear(hidden_dim, 3 * hidden_dim)
        self.attention = attention
        self.proj = nn.Linear(hidden_dim, hidden_dim)
        self.norm1 = nn.LayerNorm(hidden_dim)
        self.ff = nn.Sequential(nn.Linear(hidden_dim, 2 * hidden_dim), nn.GELU(),
                                nn.Linear(2 * hidden_dim, hidden_dim))
        self.norm2 = nn.LayerNorm(hidden_dim)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden_dim, output_dim)

    def forward(self, states: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """states [batch, seq, emb]; lengths [batch] of real tokens. Returns logits [batch, out]."""
        B, T, _ = states.shape
        mask = padding_mask(lengths, B, T, states.device)
        x = self.inp(states)
        q, k, v = self.qkv(x).view(B, T, 3, self.n_heads, -1).unbind(2)
        a = self.attention(q, k, v, mask).reshape(B, T, -1)
        x = self.norm1(x + self.dropout(self.proj(a)))
        x = self.norm2(x + self.dropout(self.ff(x)))
        return self.out(self.dropout(masked_mean(x, mask)))
