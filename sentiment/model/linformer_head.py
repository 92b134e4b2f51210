"""LinformerHead: the attention head with Linformer's low-rank attention.

Source: Sinong Wang et al., "Linformer: Self-Attention with Linear Complexity", 2020. Keys and
values [T, d] are projected along the sequence to k positions by a learned E [k, max_len]
(one E for keys and values: the paper's key-value sharing), so the scores are [T, k], not
[T, T]: O(T k) time and memory. Padding: keys and values of padded positions are zeroed before
the projection, and E's columns past the batch's length are not used, so E @ K is exactly what
the review alone gives (its own columns 0..n-1); queries of padded positions are pooled out by
AttentionHead. A review longer than ``max_len`` is an error: E has no columns for it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

from sentiment.model.attention_head import AttentionHead


@dataclass
class LinformerConfig:
    """The Linformer head's architecture, as head_config.json holds it."""
    embedding_dim: int
    hidden_dim: int
    n_heads: int
    k: int          # projected length of keys and values
    max_len: int    # longest input (tokens), E's width
    output_dim: int
    dropout: float


class LinformerAttention(nn.Module):
    def __init__(self, k: int, max_len: int):
        super().__init__()
        self.E = nn.Parameter(torch.empty(k, max_len))
        nn.init.normal_(self.E, std=1.0 / math.sqrt(k))

    def forward(self, q, k, v, mask):
        T = q.shape[1]
        if T > self.E.shape[1]:
            raise ValueError(f"Linformer head: input of {T} tokens is longer than its max_len="
                             f"{self.E.shape[1]}")
        m = mask[:, :, None, None].to(k.dtype)
        E = self.E[:, :T].to(k.dtype)
        k_proj = torch.einsum("jt,bthd->bjhd", E, k * m)   # [B, k, h, d]
        v_proj = torch.einsum("jt,bthd->bjhd", E, v * m)
        scores = torch.einsum("bthd,bjhd->bhtj", q, k_proj) / math.sqrt(q.shape[-1])
        return torch.einsum("bhtj,bjhd->bthd", scores.softmax(-1), v_proj)


class LinformerHead(AttentionHead):
    KIND = "linformer"

    def __init__(self, embedding_dim: int, hidden_dim: int, n_heads: int, k: int, max_len: int,
                 output_dim: int, dropout: float):
        super().__init__(embedding_dim, hidden_dim, n_heads, output_dim, dropout,
                         LinformerAttention(k, max_len))
        self.config = LinformerConfig(embedding_dim, hidden_dim, n_heads, k, max_len, output_dim,
                                      dropout)

    @classmethod
    def from_config(cls, cfg: LinformerConfig) -> LinformerHead:
        return cls(**asdict(cfg))
