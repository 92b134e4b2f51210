"""A trained model on disk: one folder, three small files, each written atomically.

    head.safetensors        the GRU head's weights (no pickle)
    head_config.json        the head's architecture (HeadConfig), nothing else
    preprocessing.json      how texts become token ids (sentiment.preprocessing)

A training run keeps it at ``RUN_DIR/model`` (``runs/<preset>/latest/model`` for the newest run of
a preset); the registered MLflow model carries the folder as is.
What the run measured (data fingerprint, resolved precision, metrics) is in ``RUN_DIR/metrics.json``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, fields
from pathlib import Path

from torch import nn

from . import preprocessing
from .model import GRUHead, HeadConfig
from .preprocessing import Preprocessing

MODEL_DIR = "model"  # the folder's name inside a run directory
HEAD_WEIGHTS = "head.safetensors"
HEAD_CONFIG = "head_config.json"


def save_weights(path: str | Path, module: nn.Module) -> None:
    """A module's state dict as safetensors, atomically replaced (no pickle, no torn file)."""
    from safetensors.torch import save_file
    from .utils import atomic_path
    with atomic_path(path) as tmp:
        save_file({k: v.detach().contiguous().cpu() for k, v in module.state_dict().items()}, str(tmp))


def load_weights(path: str | Path, module: nn.Module) -> None:
    from safetensors.torch import load_file
    module.load_state_dict(load_file(str(path)))


def save(head: GRUHead, directory: str | Path, spec: Preprocessing) -> Path:
    from .utils import atomic_write_text
    d = Path(directory)
    save_weights(d / HEAD_WEIGHTS, head)
    atomic_write_text(d / HEAD_CONFIG, json.dumps(asdict(head.config), indent=2) + "\n")
    preprocessing.save(spec, d)
    return d


LATEST = "latest"  # in a preset's runs folder (runs/<preset>): the newest finished run


def locate(path: str | Path) -> Path:
    """The model folder itself, given it, the run directory that holds it, or a preset's runs
    folder (runs/<preset>: its newest finished run, through `latest`)."""
    p = Path(path)
    for run in (p, p / LATEST):
        if (run / MODEL_DIR / HEAD_CONFIG).exists():
            return run / MODEL_DIR
    return p


def load_head(directory: str | Path) -> GRUHead:
    """The trained head, in eval mode; a missing or malformed folder is a one-line error."""
    d = Path(directory)
    if not (d / HEAD_WEIGHTS).exists() or not (d / HEAD_CONFIG).exists():
        raise FileNotFoundError(f"{d}: no trained head here (expected {HEAD_WEIGHTS} and {HEAD_CONFIG})")
    try:
        raw = json.loads((d / HEAD_CONFIG).read_text())
        names = {f.name for f in fields(HeadConfig)}
        if not isinstance(raw, dict) or set(raw) != names:
            raise ValueError(f"expected exactly the keys {sorted(names)}")
        head = GRUHead.from_config(HeadConfig(**raw))
    except (ValueError, TypeError) as e:
        raise ValueError(f"{d / HEAD_CONFIG}: malformed head config: {' '.join(str(e).split())}") \
            from None
    load_weights(d / HEAD_WEIGHTS, head)
    return head.eval()


def load(path: str | Path) -> tuple[GRUHead, Preprocessing]:
    """(head, preprocessing spec) of a model folder or of the run directory holding one."""
    d = locate(path)
    return load_head(d), preprocessing.load(d)
