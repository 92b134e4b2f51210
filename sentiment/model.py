"""BERTGRUSentiment: a frozen encoder, a bidirectional GRU over its last hidden states, a linear layer.

The head is its own module so it can run on precomputed encoder states (the state cache).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

HEAD_WEIGHTS = "head.safetensors"
HEAD_CONFIG = "head_config.json"


@dataclass
class HeadConfig:
    embedding_dim: int
    hidden_dim: int = 256
    output_dim: int = 1
    n_layers: int = 2
    bidirectional: bool = True
    dropout: float = 0.25


class GRUHead(nn.Module):
    def __init__(self, embedding_dim: int, hidden_dim: int, output_dim: int, n_layers: int,
                 bidirectional: bool, dropout: float):
        super().__init__()
        self.config = HeadConfig(embedding_dim, hidden_dim, output_dim, n_layers, bidirectional, dropout)
        self.rnn = nn.GRU(embedding_dim, hidden_dim, num_layers=n_layers, bidirectional=bidirectional,
                          batch_first=True, dropout=0.0 if n_layers < 2 else dropout)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden_dim * 2 if bidirectional else hidden_dim, output_dim)

    def forward(self, states: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """states [batch, seq, emb]; lengths [batch] of real tokens. Returns logits [batch, out]."""
        if lengths is not None:
            # Packing makes the final hidden states those of each review's last real token, so a
            # review's score does not depend on how much padding its batch carries.
            x = pack_padded_sequence(states, lengths.cpu(), batch_first=True, enforce_sorted=False)
        else:
            x = states
        _, hidden = self.rnn(x)
        if self.rnn.bidirectional:
            hidden = torch.cat((hidden[-2], hidden[-1]), dim=1)
        else:
            hidden = hidden[-1]
        return self.out(self.dropout(hidden))

    @classmethod
    def from_config(cls, cfg: HeadConfig) -> "GRUHead":
        return cls(**asdict(cfg))


class BERTGRUSentiment(nn.Module):
    """The homework's model. ``bert`` is frozen here; only the GRU head trains."""

    def __init__(self, bert: nn.Module, hidden_dim: int = 256, output_dim: int = 1, n_layers: int = 2,
                 bidirectional: bool = True, dropout: float = 0.25):
        super().__init__()
        self.bert = bert
        for p in self.bert.parameters():
            p.requires_grad_(False)
        embedding_dim = bert.config.to_dict()["hidden_size"]
        self.head = GRUHead(embedding_dim, hidden_dim, output_dim, n_layers, bidirectional, dropout)
        # The homework calls model.train(), which also puts BERT in train mode (its dropout on).
        self.encoder_dropout = True

    def train(self, mode: bool = True) -> "BERTGRUSentiment":
        super().train(mode)
        self.bert.train(mode and self.encoder_dropout)
        return self

    def encode(self, text: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        with torch.no_grad():
            return self.bert(input_ids=text, attention_mask=attention_mask)[0]

    def forward(self, text: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        embedded = self.encode(text, attention_mask)
        lengths = attention_mask.sum(1) if attention_mask is not None else None
        return self.head(embedded.to(self.head.out.weight.dtype), lengths)


def count_parameters(model: nn.Module) -> dict:
    return {"total": sum(p.numel() for p in model.parameters()),
            "trainable": sum(p.numel() for p in model.parameters() if p.requires_grad)}


def save_weights(path: str | Path, module: nn.Module) -> None:
    """A module's state dict as safetensors, atomically replaced (no pickle, no torn file)."""
    from safetensors.torch import save_file
    from .utils import atomic_path
    with atomic_path(path) as tmp:
        save_file({k: v.detach().contiguous().cpu() for k, v in module.state_dict().items()}, str(tmp))


def load_weights(path: str | Path, module: nn.Module) -> None:
    from safetensors.torch import load_file
    module.load_state_dict(load_file(str(path)))


def save_head(head: GRUHead, directory: str | Path, extra: dict | None = None) -> None:
    """Head weights as safetensors plus a JSON config; written atomically file by file."""
    from .utils import atomic_write_text
    d = Path(directory)
    save_weights(d / HEAD_WEIGHTS, head)
    atomic_write_text(d / HEAD_CONFIG, json.dumps({**asdict(head.config), **(extra or {})}, indent=2))


def load_head(directory: str | Path) -> tuple[GRUHead, dict]:
    d = Path(directory)
    if not (d / HEAD_WEIGHTS).exists() or not (d / HEAD_CONFIG).exists():
        raise FileNotFoundError(f"{d}: no trained head here (expected {HEAD_WEIGHTS} and {HEAD_CONFIG})")
    meta = json.loads((d / HEAD_CONFIG).read_text())
    fields = HeadConfig.__dataclass_fields__
    head = GRUHead.from_config(HeadConfig(**{k: meta[k] for k in fields if k in meta}))
    load_weights(d / HEAD_WEIGHTS, head)
    return head.eval(), meta
