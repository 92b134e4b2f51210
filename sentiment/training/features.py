"""What a training batch is made of: cached encoder states, or token ids run through the encoder.

Both sources give the loop the same three things (labels, lengths, and logits for a batch of
indices), so ``cache_states`` switches between them without touching the loop.
"""

from __future__ import annotations

import torch

from sentiment.common.compute import encoder_autocast
from sentiment.data.batching import pad_ids
from sentiment.encoding import encoders
from sentiment.model import encoder_layers
from sentiment.model.bert_gru import BERTGRUSentiment
from sentiment.model.gru_scan import head_forward
from sentiment.model.inference_head import inference_head
from sentiment.training import state_cache


class CachedFeatures:
    """Cached encoder states, computed once per split: the frozen encoder's output, or the
    states entering the first trained layer (the trained top layers then run on every batch)."""

    def __init__(self, store, labels, device, precision: str = "fp32"):
        self.store, self.labels, self.device = store, labels, device
        self.precision = precision
        self.lengths = store.lengths

    def logits(self, model: BERTGRUSentiment, idx, head_ctx, head) -> torch.Tensor:
        """The logits of the reviews `idx`; `head(states, lengths)` is the head's call (the
        training kernel, or an inference copy in the pass's precision)."""
        states, lengths = self.store.batch(idx)
        states = states.to(self.device, non_blocking=True)
        if model.trains_encoder:
            mask = (torch.arange(states.shape[1])[None, :] < lengths[:, None]).long()
            with encoder_autocast(self.device, self.precision):
                states = model.encode_from(states, mask.to(self.device))
            states = states.to(model.head.out.weight.dtype)
        with head_ctx():
            return head(states, lengths)


class TokenFeatures:
    """Token ids; the encoder runs on every batch (with its dropout in training, as in the
    homework, when it is frozen; its trained layers with gradients when they train)."""

    def __init__(self, tokens, labels, device, pad_id, precision):
        self.tokens, self.labels, self.device = tokens, labels, device
        self.pad_id, self.precision = pad_id, precision
        self.lengths = tokens.lengths

    def logits(self, model: BERTGRUSentiment, idx, head_ctx, head) -> torch.Tensor:
        ids, mask = pad_ids([self.tokens.input_ids[i] for i in idx], self.pad_id)
        ids, mask = ids.to(self.device), mask.to(self.device)
        # encode() runs the frozen part without gradients itself.
        with encoder_autocast(self.device, self.precision):
            emb = model.encode(ids, mask)
        with head_ctx():
            return head(emb.to(model.head.out.weight.dtype), mask.sum(1))


def head_call(model: BERTGRUSentiment, training: bool, precision: str, device: torch.device):
    """How a pass calls the head: the training kernel with gradients, or an inference copy in
    the encoder pass's precision (model/inference_head.py)."""
    if training:
        return lambda states, lengths: head_forward(model.head, states, lengths)
    return inference_head(model.head, precision, device)


def head_autocast(device: torch.device):
    # bf16 autocast makes nn.GRU ~8x slower on CPU; cuDNN runs it fast in bf16.
    if device.type == "cuda":
        return lambda: torch.autocast("cuda", dtype=torch.bfloat16)
    return lambda: torch.autocast("cpu", enabled=False)


def build_features(cfg, encoder, run_encoder, encoder_spec, pad_id: int, tokens: dict,
                   labels: dict, device, precision: str) -> tuple[dict, dict]:
    """Per split, the feature source `cfg.cache_states` asks for; with the cache, also what
    each split's cache lookup did (hit or built, seconds, key). `run_encoder` is `encoder` as
    it runs (int8-quantized or not); the cache keys on the weights `encoder` was loaded with.
    When the top encoder layers train, the cache holds the states entering the first of them;
    when all layers train there is nothing frozen to cache, and token ids feed every batch."""
    features, cache_info = {}, {}
    start = encoder_layers.first_trained_layer(encoder, cfg.train_encoder_layers, cfg.encoder)
    frozen = start == encoder_layers.num_layers(encoder)
    if cfg.cache_states and start > 0:
        enc_id = encoders.encoder_identity(encoder, encoder_spec)
        for name, tok in tokens.items():
            store, info = state_cache.get_or_build(
                run_encoder, tok, encoder_id=enc_id, cache_dir=cfg.cache_dir, device=device,
                precision=precision, pad_id=pad_id, progress=cfg.progress, name=name,
                meta={"encoder": cfg.encoder, "split": name},
                layer=None if frozen else start, rebuild=cfg.rebuild_damaged_caches)
            cache_info[name] = info
            features[name] = CachedFeatures(store, labels[name], device, precision)
    else:
        for name, tok in tokens.items():
            features[name] = TokenFeatures(tok, labels[name], device, pad_id, precision)
    return features, cache_info
