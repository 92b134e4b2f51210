"""CNNHead: a convolutional head over the encoder's states.

Source: Yoon Kim, "Convolutional Neural Networks for Sentence Classification", EMNLP 2014:
several filter widths (3, 4, 5 there), ReLU, max-over-time pooling of each feature map,
dropout, a linear layer. Here the inputs are the encoder's contextual states instead of word
vectors, and the convolutions are wide (zero padding of width-1 on both sides, Kalchbrenner et
al. 2014), so a review shorter than the widest filter still has features. Padded positions are
zeroed before the convolutions and the windows that reach past a review's end are masked out of
the max: a review's logit is the same alone or padded in a batch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from sentiment.model.masking import padding_mask


@dataclass
class CNNConfig:
    """The CNN head's architecture, as head_config.json holds it."""
    embedding_dim: int
    n_filters: int        # feature maps per filter width
    widths: list[int]     # filter widths in tokens
    output_dim: int
    dropout: float


class CNNHead(nn.Module):
    KIND = "cnn"

    def __init__(self, embedding_dim: int, n_filters: int, widths: list[int], output_dim: int,
                 dropout: float):
        super().__init__()
        widths = [int(w) for w in widths]
        self.config = CNNConfig(embedding_dim, n_filters, widths, output_dim, dropout)
        self.convs = nn.ModuleList(nn.Conv1d(embedding_dim, n_filters, w, padding=w - 1)
                                   for w in widths)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(n_filters * len(widths), output_dim)

    def forward(self, states: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """states [batch, seq, emb]; lengths [batch] of real tokens. Returns logits [batch, out]."""
        B, T, _ = states.shape
        mask = padding_mask(lengths, B, T, states.device)
        x = (states * mask.unsqueeze(-1).to(states.dtype)).transpose(1, 2)  # [B, E, T]
        n = mask.sum(1)
        pooled = []
        for conv, w in zip(self.convs, self.config.widths):
            fmap = torch.relu(conv(x))  # [B, F, T + w - 1]; output t sees inputs t-w+1 .. t
            # Outputs past n + w - 2 see only padding: a review alone has none of them.
            valid = torch.arange(fmap.shape[2], device=x.device)[None, :] < (n + w - 1)[:, None]
            pooled.append(fmap.masked_fill(~valid.unsqueeze(1), float("-inf")).amax(dim=2))
        return self.out(self.dropout(torch.cat(pooled, dim=1)))

    @classmethod
    def from_config(cls, cfg: CNNConfig) -> CNNHead:
        return cls(**asdict(cfg))
