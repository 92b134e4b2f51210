"""The heads a model can have, by name: what ``Config.head`` chooses, what head_config.json
records (its ``head`` key), and how either becomes a head.

Every head takes the encoder's states [batch, seq, emb] and each review's length, and ends in
the same logit; a review's logit does not depend on the padding of its batch.
"""

from __future__ import annotations

from dataclasses import asdict, fields

from torch import nn

from sentiment.model.bert_gru import GRUHead, HeadConfig
from sentiment.model.cnn_head import CNNConfig, CNNHead
from sentiment.model.linear_attention_head import LinearAttentionConfig, LinearAttentionHead
from sentiment.model.linformer_head import LinformerConfig, LinformerHead

GRU = "gru"
# name -> (head class, its config dataclass)
HEADS: dict[str, tuple[type, type]] = {
    GRU: (GRUHead, HeadConfig),
    CNNHead.KIND: (CNNHead, CNNConfig),
    LinformerHead.KIND: (LinformerHead, LinformerConfig),
    LinearAttentionHead.KIND: (LinearAttentionHead, LinearAttentionConfig),
}
KIND_KEY = "head"  # head_config.json's key naming the head; absent in GRU folders made before it


def parse_widths(text: str) -> list[int]:
    """'3,4,5' -> [3, 4, 5]; anything else is a one-line error."""
    try:
        widths = [int(w) for w in str(text).split(",") if w.strip()]
    except ValueError:
        widths = []
    if not widths or min(widths) < 1:
        raise ValueError(f"cnn_widths={text!r}: expected comma-separated positive integers, "
                         "e.g. '3,4,5'")
    return widths


def build_head(cfg, embedding_dim: int) -> nn.Module:
    """The head ``cfg.head`` names, sized by ``cfg`` (hidden_dim, dropout and each head's own
    fields), on states of `embedding_dim`."""
    if cfg.head == GRU:
        return GRUHead(embedding_dim, cfg.hidden_dim, cfg.output_dim, cfg.n_layers,
                       cfg.bidirectional, cfg.dropout)
    if cfg.head == CNNHead.KIND:
        return CNNHead(embedding_dim, cfg.hidden_dim, parse_widths(cfg.cnn_widths),
                       cfg.output_dim, cfg.dropout)
    if cfg.head == LinformerHead.KIND:
        return LinformerHead(embedding_dim, cfg.hidden_dim, cfg.attention_heads, cfg.linformer_k,
                             cfg.max_length, cfg.output_dim, cfg.dropout)
    if cfg.head == LinearAttentionHead.KIND:
        return LinearAttentionHead(embedding_dim, cfg.hidden_dim, cfg.attention_heads,
                                   cfg.output_dim, cfg.dropout)
    raise ValueError(f"head={cfg.head!r} is not one of {list(HEADS)}")


def kind_of(head: nn.Module) -> str:
    for name, (cls, _) in HEADS.items():
        if type(head) is cls:
            return name
    raise ValueError(f"{type(head).__name__} is not a known head ({list(HEADS)})")


def to_dict(head: nn.Module) -> dict:
    """What head_config.json holds: the head's name and its architecture, nothing else."""
    return {KIND_KEY: kind_of(head), **asdict(head.config)}


def from_dict(raw: dict) -> nn.Module:
    """The head a head_config.json describes (untrained weights); a missing ``head`` key is a
    GRU (folders saved before heads had names). Unknown names or keys are a ValueError."""
    if not isinstance(raw, dict):
        raise ValueError("expected a JSON object")
    raw = dict(raw)
    kind = raw.pop(KIND_KEY, GRU)
    if kind not in HEADS:
        raise ValueError(f"head {kind!r} is not one of {list(HEADS)}")
    cls, config = HEADS[kind]
    names = {f.name for f in fields(config)}
    if set(raw) != names:
        raise ValueError(f"a {kind} head expects exactly the keys {sorted(names)}")
    return cls.from_config(config(**raw))
