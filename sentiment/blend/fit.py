"""Fitting the blend after the encoder + GRU model is trained: the bag-of-words part on its own
training reviews (all of the training split unless ``baseline_max_train`` says otherwise: it
costs seconds), the stacker on the validation split only, both saved into the model folder.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from sentiment.blend import stacker as stacker_mod
from sentiment.blend.blended_model import save_blend

PARTS = ("encoder", "bag_of_words")


def fit_blend(cfg, splits, valid_probs, test_probs, model_dir: str | Path) -> dict:
    """Blend the trained model (its validation and test probabilities on `splits`) with the
    bag-of-words model of ``cfg.baseline_kind``; save both into `model_dir`/blend.

    Returns {"valid_probs", "test_probs": the blend's, "parts": {part: test probabilities},
    "stacker": its numbers, "bag_of_words": {kind, n_features, train_rows}, "seconds"}."""
    from sentiment.baseline import kinds, run_copy
    t = time.perf_counter()
    res = None
    bow_splits = kinds.baseline_splits(cfg)
    for name in ("valid", "test"):  # the parts must be scored on the very same reviews
        a, b = getattr(splits, name), getattr(bow_splits, name)
        if len(a) != len(b) or not (a["text"].to_numpy() == b["text"].to_numpy()).all():
            raise ValueError(f"the bag-of-words part's {name} split differs from the model's")
    # The baseline run of this run folder saved the very model this config fits: reuse it.
    trained_as = run_copy.key(cfg, bow_splits)
    bow = run_copy.load(cfg.run_dir, trained_as)
    if bow is None:
        res = kinds.train_and_test(cfg, bow_splits)
        bow, n_features = res["model"], res["n_features"]
        bow_test = np.asarray(res["probs"], dtype=np.float64)
    else:
        n_features = len(bow.coef)
        bow_test = np.asarray(bow.predict_proba(splits.test["text"].tolist()), dtype=np.float64)
    bow_valid = np.asarray(bow.predict_proba(splits.valid["text"].tolist()), dtype=np.float64)
    # Validation labels only: the test split's labels never reach the rule.
    stacker = stacker_mod.fit(valid_probs, bow_valid, splits.valid["label"].to_numpy())
    with tempfile.TemporaryDirectory() as tmp:
        bow_dir = bow.save(Path(tmp) / "bow")
        save_blend(model_dir, bow_dir, stacker)
    return {"valid_probs": stacker.proba(valid_probs, bow_valid),
            "test_probs": stacker.proba(test_probs, bow_test),
            "parts": {"encoder": np.asarray(test_probs, dtype=np.float64), "bag_of_words": bow_test},
            "stacker": {"w_encoder": stacker.w_encoder, "w_bow": stacker.w_bow,
                        "bias": stacker.bias, "encoder_share": stacker.encoder_share(),
                        "fitted_on": stacker.fitted_on, "n": stacker.n},
            "bag_of_words": {"kind": cfg.baseline_kind, "n_features": n_features,
                             "train_rows": len(bow_splits.train), "reused": res is None},
            "seconds": time.perf_counter() - t}
