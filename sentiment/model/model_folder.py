"""A trained model on disk: one folder, three small files (four when encoder layers were
fine-tuned), each written atomically.

    head.safetensors        the head's weights (no pickle)
    head_config.json        which head (``head``: gru, cnn, linformer, linear_attention) and its
                            architecture, nothing else; a folder without ``head`` holds a GRU
    preprocessing.json      how texts become token ids (sentiment.encoding.preprocessing)
    encoder_layers.safetensors  only when encoder layers were fine-tuned: their weights, named
                            as in the base encoder's state dict, which the preprocessing spec
                            names; loading puts them over the base encoder's

A finished training run adds ``checksums.json`` (each file's size and SHA-256, the blend's files
included); loading checks every file against it, and the registered MLflow model carries it.
A training run keeps it at ``RUN_DIR/model`` (``runs/<preset>/latest/model`` for the newest run of
a preset); the registered MLflow model carries the folder as is.
What the run measured (data fingerprint, resolved precision, metrics) is in ``RUN_DIR/metrics.json``.
"""

from __future__ import annotations

import json
from pathlib import Path

from torch import nn

from sentiment.common.checksums import CHECKSUMS, DIGEST, check_folder, checked_tensors, tensors_digest
from sentiment.encoding import preprocessing
from sentiment.encoding.preprocessing import Preprocessing
from sentiment.model import heads

MODEL_DIR = "model"  # the folder's name inside a run directory
HEAD_WEIGHTS = "head.safetensors"
HEAD_CONFIG = "head_config.json"
ENCODER_LAYERS = "encoder_layers.safetensors"


def save_weights(path: str | Path, module: nn.Module) -> None:
    """A module's state dict as safetensors, atomically replaced (no pickle, no torn file),
    with the digest of its tensors in its metadata."""
    save_tensors(path, module.state_dict())


def load_weights(path: str | Path, module: nn.Module) -> None:
    module.load_state_dict(checked_tensors(path))


def save(head: nn.Module, directory: str | Path, spec: Preprocessing,
         encoder_state: dict | None = None) -> Path:
    """`encoder_state`: the fine-tuned encoder layers (None or empty: the encoder was frozen)."""
    from sentiment.common.files import atomic_write_text
    d = Path(directory)
    # The folder's files change now: an earlier record of them would call them damaged.
    (d / CHECKSUMS).unlink(missing_ok=True)
    if encoder_state:
        save_tensors(d / ENCODER_LAYERS, encoder_state, {"base_encoder": spec.encoder})
    elif (d / ENCODER_LAYERS).exists():
        (d / ENCODER_LAYERS).unlink()  # an earlier fine-tuned model's layers must not linger
    save_weights(d / HEAD_WEIGHTS, head)
    atomic_write_text(d / HEAD_CONFIG, json.dumps(heads.to_dict(head), indent=2) + "\n")
    preprocessing.save(spec, d)
    return d


LATEST = "latest"  # in a preset's runs folder (runs/<preset>): the newest finished run


def save_tensors(path: str | Path, tensors: dict, metadata: dict | None = None) -> None:
    from safetensors.torch import save_file

    from sentiment.common.files import atomic_path
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={**(metadata or {}), DIGEST: tensors_digest(tensors)})


def save_trained(path: str | Path, model) -> None:
    """What trains in `model`, in one file: the head's state dict (the frozen-encoder format),
    or, when encoder layers train, ``head.*`` and ``encoder.*`` entries together."""
    encoder_state = model.encoder_state()
    if not encoder_state:
        save_weights(path, model.head)
        return
    tensors = {f"head.{k}": v for k, v in model.head.state_dict().items()}
    tensors.update({f"encoder.{k}": v for k, v in encoder_state.items()})
    save_tensors(path, tensors)


def load_trained(path: str | Path, model) -> None:
    from sentiment.model.encoder_layers import load_trained_state
    tensors = checked_tensors(path)
    if not any(k.startswith("head.") for k in tensors):
        model.head.load_state_dict(tensors)
        return
    model.head.load_state_dict({k[5:]: v for k, v in tensors.items() if k.startswith("head.")})
    load_trained_state(model.bert, {k[8:]: v for k, v in tensors.items()
                                    if k.startswith("encoder.")}, str(path))


def load_encoder_layers(directory: str | Path, encoder) -> int:
    """Put a model folder's fine-tuned layers over `encoder` (its base encoder, loaded by name or
    from an exported copy). Returns how many tensors it replaced; 0 for a frozen-encoder model."""
    from sentiment.model.encoder_layers import load_trained_state
    path = Path(directory) / ENCODER_LAYERS
    if not path.exists():
        return 0
    tensors = checked_tensors(path)
    load_trained_state(encoder, tensors, str(path))
    return len(tensors)


def locate(path: str | Path) -> Path:
    """The model folder itself, given it, the run directory that holds it, or a preset's runs
    folder (runs/<preset>: its newest finished run, through `latest`)."""
    p = Path(path)
    for run in (p, p / LATEST):
        if (run / MODEL_DIR / HEAD_CONFIG).exists():
            return run / MODEL_DIR
    return p


def load_head(directory: str | Path) -> nn.Module:
    """The trained head, in eval mode; a missing or malformed folder is a one-line error."""
    d = Path(directory)
    if not (d / HEAD_WEIGHTS).exists() or not (d / HEAD_CONFIG).exists():
        raise FileNotFoundError(f"{d}: no trained head here (expected {HEAD_WEIGHTS} and {HEAD_CONFIG})")
    try:
        head = heads.from_dict(json.loads((d / HEAD_CONFIG).read_text()))
    except (ValueError, TypeError) as e:
        raise ValueError(f"{d / HEAD_CONFIG}: malformed head config: {' '.join(str(e).split())}") \
            from None
    load_weights(d / HEAD_WEIGHTS, head)
    return head.eval()


def load(path: str | Path) -> tuple[nn.Module, Preprocessing]:
    """(head, preprocessing spec) of a model folder or of the run directory holding one, once
    every file its checksums.json lists matches (``checksums.Damaged`` names the first that
    does not)."""
    d = locate(path)
    check_folder(d)
    return load_head(d), preprocessing.load(d)
