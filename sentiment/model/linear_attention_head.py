"""LinearAttentionHead: the attention head with kernelised linear attention.

Source: Angelos Katharopoulos et al., "Transformers are RNNs: Fast Autoregressive Transformers
with Linear Attention", ICML 2020. softmax(q k^T) is replaced by phi(q) phi(k)^T with
phi(x) = elu(x) + 1; by associativity the output is phi(Q) (phi(K)^T V) / (phi(Q) sum_t
phi(K_t)), so no [T, T] matrix exists: O(T d^2) time and O(T d + d^2) memory per head.
Padded positions' phi(k) and v are zeroed, so they add nothing to either sum; their queries are
pooled out by AttentionHead.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F

from sentiment.model.attention_head import AttentionHead

EPS = 1e-6  # keeps the normaliser away from 0 (phi > 0, so it is only ever small)


@dataclass
class LinearAttentionConfig:
    """The linear-attention head's architecture, as head_config.json holds it."""
    embedding_dim: int
    hidden_dim: int
    n_heads: int
    output_dim: int
    dropout: float


class LinearAttention(nn.Module):
    def forward(self, q, k, v, mask):
        m = mask[:, :, None, None].to(k.dtype)
        q, k = F.elu(q) + 1, (F.elu(k) + 1) * m
        kv = torch.einsum("bthd,bthe->bhde", k, v * m)            # [B, h, d, d]
        norm = torch.einsum("bthd,bhd->bth", q, k.sum(1)) + EPS   # [B, T, h]
        return torch.einsum("bthd,bhde->bthe", q, kv) / norm.unsqueeze(-1)


class LinearAttentionHead(AttentionHead):
    KIND = "linear_attention"

    def __init__(self, embedding_dim: int, hidden_dim: int, n_heads: int, output_dim: int,
                 dropout: float):
        super().__init__(embedding_dim, hidden_dim, n_heads, output_dim, dropout,
                         LinearAttention())
        self.config = LinearAttentionConfig(embedding_dim, hidden_dim, n_heads, output_dim,
                                            dropout)

    @classmethod
    def from_config(cls, cfg: LinearAttentionConfig) -> LinearAttentionHead:
        return cls(**asdict(cfg))
