"""The run's own copy of its bag-of-words model: the baseline run saves it in the run folder, and
a blended model takes its bag-of-words part from there instead of fitting the same model again
(a minute of NBSVM on the full training split).

The copy is used only when it was trained as this config would train it: the key hashes every
``baseline_*`` setting, the split settings and the data's fingerprint. Anything else (no copy,
another key, a damaged folder) means "fit it": the copy saves time, never decides a result.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

from sentiment.baseline import kinds
from sentiment.common.files import temp_prefix

log = logging.getLogger(__name__)

FOLDER = "bag_of_words"
KEY_FILE = "trained_as.json"
# What decides which reviews the bag-of-words model learns from and is tested on.
SPLIT_FIELDS = ("data", "split_seed", "train_fraction", "max_valid", "max_test")


def settings(cfg) -> dict:
    """The Config fields of the vectorizer and the classifier (the model's name excluded)."""
    return {k: v for k, v in cfg.to_dict().items()
            if k.startswith("baseline_") and k != "baseline_model_name"}


def key(cfg, splits) -> str:
    """Hash of everything that decides the fitted model: its settings, the splits, the data."""
    fields = settings(cfg)
    fields.update({k: getattr(cfg, k) for k in SPLIT_FIELDS}, fingerprint=splits.fingerprint)
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()[:16]


def save(model, run_dir: str | Path, trained_as: str) -> Path:
    """Write `model` as the run folder's copy, whole or not at all (a folder renamed into place;
    a copy already there, from a retried attempt, is replaced)."""
    target = Path(run_dir) / FOLDER
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(FOLDER), suffix=".tmp", dir=target.parent))
    try:
        model.save(tmp)
        (tmp / KEY_FILE).write_text(json.dumps({"key": trained_as}))
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def load(run_dir: str | Path, trained_as: str):
    """The run folder's copy if it was trained as `trained_as` says, else None."""
    folder = Path(run_dir) / FOLDER
    try:
        if json.loads((folder / KEY_FILE).read_text()).get("key") != trained_as:
            return None
        return kinds.load(folder)
    except FileNotFoundError:
        return None
    except (ValueError, OSError) as e:  # damaged: fitting again costs a minute, nothing more
        log.warning("ignoring the run's bag-of-words copy in %s: %s", folder, e)
        return None
