"""The preprocessing spec: how a review becomes the token ids a trained head was fed.

It is saved beside the model as ``preprocessing.json`` and read back by one loader, so training,
prediction and the registered model all tokenize the same way. No fallbacks: a model folder
without a readable spec is an error, not a guess.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Optional

FILE = "preprocessing.json"


@dataclass(frozen=True)
class Preprocessing:
    encoder: str                     # encoder (and tokenizer) name, as in Config.encoder
    encoder_revision: Optional[str]  # Hub revision, None for packaged or local encoders
    max_length: int                  # token budget, [CLS] and [SEP] included
    truncation: str                  # 'head' or 'head_tail'

    def encode(self, tokenizer, texts: list[str]) -> list[list[int]]:
        from sentiment.encoding.tokenization import encode_texts
        return encode_texts(tokenizer, texts, self.max_length, self.truncation)


def from_config(cfg) -> Preprocessing:
    return Preprocessing(cfg.encoder, cfg.encoder_revision, cfg.max_length, cfg.truncation)


def save(spec: Preprocessing, model_dir: str | Path) -> Path:
    from sentiment.common.files import atomic_write_text
    path = Path(model_dir) / FILE
    atomic_write_text(path, json.dumps(asdict(spec), indent=2) + "\n")
    return path


def load(model_dir: str | Path) -> Preprocessing:
    path = Path(model_dir) / FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no preprocessing spec (every saved model folder has "
                                f"one; retrain to write it)")
    try:
        raw = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: malformed preprocessing spec: {_one_line(e)}") from None
    problem = _problem(raw)
    if problem:
        raise ValueError(f"{path}: malformed preprocessing spec: {problem}")
    return Preprocessing(**raw)


def _problem(raw) -> Optional[str]:
    """What is wrong with a decoded spec, checked against Config's own rules; None if nothing."""
    if not isinstance(raw, dict):
        return f"expected a JSON object, got {type(raw).__name__}"
    names = [f.name for f in fields(Preprocessing)]
    missing = [n for n in names if n not in raw]
    unknown = sorted(set(raw) - set(names))
    if missing or unknown:
        return "; ".join(([f"missing key(s) {missing}"] if missing else [])
                         + ([f"unknown key(s) {unknown}"] if unknown else []))
    types = {"encoder": (str,), "encoder_revision": (str, type(None)), "max_length": (int,),
             "truncation": (str,)}
    for n, ok in types.items():
        if not isinstance(raw[n], ok) or isinstance(raw[n], bool):
            return f"{n}={raw[n]!r} has the wrong type"
    if not raw["encoder"]:
        return "encoder is empty"
    from sentiment.config import Config
    try:
        Config(**raw)  # the same bounds and choices as a training config
    except ValueError as e:
        return _one_line(e).removeprefix("invalid config: ")
    return None


def _one_line(e: Exception) -> str:
    return " ".join(str(e).split())
