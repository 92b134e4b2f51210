"""The preprocessing spec saved beside a model: which encoder and how texts become its tokens.

One small JSON file (``preprocessing.json``) in the model folder, read by one loader with no
fallbacks: a model is fed exactly as it was trained, or it is not loaded.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Optional

FILE = "preprocessing.json"


@dataclass(frozen=True)
class Preprocessing:
    encoder: str
    encoder_revision: Optional[str]
    max_length: int
    truncation: str


def from_config(cfg) -> Preprocessing:
    return Preprocessing(cfg.encoder, cfg.encoder_revision, cfg.max_length, cfg.truncation)


def save(spec: Preprocessing, model_dir: str | Path) -> Path:
    from .utils import atomic_write_text
    path = Path(model_dir) / FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(asdict(spec), indent=2))
    return path


def load(model_dir: str | Path) -> Preprocessing:
    path = Path(model_dir) / FILE
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no preprocessing spec (the model folder is incomplete)") from None
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: unreadable preprocessing spec ({e})") from None
    names = {f.name for f in fields(Preprocessing)}
    if not isinstance(raw, dict) or set(raw) != names:
        raise ValueError(f"{path}: malformed preprocessing spec (expected the keys {sorted(names)})")
    return Preprocessing(**raw)
