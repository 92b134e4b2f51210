"""BERTGRUSentiment: an encoder (frozen, or its top layers trained), a bidirectional GRU over
its last hidden states, a linear layer. ``with_head`` puts another head (sentiment.model.heads)
where the GRU is.

The head is its own module so it can run on precomputed encoder states (the state cache).
Sizes have no defaults here: they come from ``Config`` (``build_model``) or a saved head.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from sentiment.model import encoder_layers


@dataclass
class HeadConfig:
    """The GRU head's architecture: what head_config.json holds beside the head's name."""
    embedding_dim: int
    hidden_dim: int
    output_dim: int
    n_layers: int
    bidirectional: bool
    dropout: float


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
    def from_config(cls, cfg: HeadConfig) -> GRUHead:
        return cls(**asdict(cfg))


class BERTGRUSentiment(nn.Module):
    """The homework's model. ``bert`` is frozen unless ``train_encoder_layers`` lets its top
    layers train; the embeddings always stay frozen."""

    def __init__(self, bert: nn.Module, hidden_dim: int, output_dim: int, n_layers: int,
                 bidirectional: bool, dropout: float):
        super().__init__()
        self._attach(bert, lambda emb: GRUHead(emb, hidden_dim, output_dim, n_layers,
                                               bidirectional, dropout))

    @classmethod
    def with_head(cls, bert: nn.Module, head: nn.Module) -> BERTGRUSentiment:
        """The model with `head` (any of sentiment.model.heads, built for bert's hidden size)
        in place of the GRU."""
        model = cls.__new__(cls)
        nn.Module.__init__(model)
        model._attach(bert, lambda emb: head)
        return model

    def _attach(self, bert: nn.Module, make_head) -> None:
        self.bert = bert
        for p in self.bert.parameters():
            p.requires_grad_(False)
        # Index of the first layer that trains; the layer count while the encoder is frozen.
        self.first_trained = encoder_layers.num_layers(bert)
        self.head = make_head(bert.config.to_dict()["hidden_size"])
        # The homework calls model.train(), which also puts BERT in train mode (its dropout on).
        self.encoder_dropout = True

    def train_encoder_layers(self, n: int, name: str = "encoder") -> BERTGRUSentiment:
        """Let the top `n` encoder layers train (-1: all, 0: none); the embeddings stay frozen."""
        self.first_trained = encoder_layers.first_trained_layer(self.bert, n, name)
        for i, module in enumerate(self.bert.encoder.layer):
            for p in module.parameters():
                p.requires_grad_(i >= self.first_trained)
        return self

    @property
    def trains_encoder(self) -> bool:
        return self.first_trained < encoder_layers.num_layers(self.bert)

    def train(self, mode: bool = True) -> BERTGRUSentiment:
        super().train(mode)
        if not self.trains_encoder:
            self.bert.train(mode and self.encoder_dropout)
            return self
        # Frozen parts always run as they were cached: in eval mode, without dropout.
        self.bert.train(False)
        for module in encoder_layers.trained_modules(self.bert, self.first_trained):
            module.train(mode)
        return self

    def encode(self, text: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        if not self.trains_encoder:
            with torch.no_grad():
                return self.bert(input_ids=text, attention_mask=attention_mask)[0]
        with torch.no_grad():
            hidden = encoder_layers.states_entering(self.bert, text, attention_mask,
                                                    self.first_trained)
        return self.encode_from(hidden, attention_mask)

    def encode_from(self, hidden: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        """The trained top layers on the states entering the first of them (cached or not)."""
        return encoder_layers.run_layers(self.bert, hidden, attention_mask, self.first_trained)

    def forward(self, text: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        embedded = self.encode(text, attention_mask)
        lengths = attention_mask.sum(1) if attention_mask is not None else None
        return self.head(embedded.to(self.head.out.weight.dtype), lengths)

    def encoder_state(self) -> dict[str, torch.Tensor]:
        """The trained encoder layers' weights (empty when the encoder is frozen)."""
        if not self.trains_encoder:
            return {}
        return encoder_layers.trained_state(self.bert, self.first_trained)

    def encoder_parameters(self) -> list[tuple[str, nn.Parameter]]:
        return [(n, p) for n, p in self.bert.named_parameters() if p.requires_grad]


def count_parameters(model: nn.Module) -> dict:
    return {"total": sum(p.numel() for p in model.parameters()),
            "trainable": sum(p.numel() for p in model.parameters() if p.requires_grad)}
