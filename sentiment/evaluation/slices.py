"""Test accuracy per slice of the test set: where a model's average can hide a loss.

The slices, each a subset of the test reviews (one review can be in several):

- ``length_q1`` .. ``length_q4``: quartiles of the review's length in words, cut at the test
  set's own quartiles (so two models tested on one test set share them);
- ``cut`` and ``whole``: reviews longer than the model reads (more than ``max_length`` - 2
  tokens of its tokenizer, so truncated) and those it reads whole;
- ``negation``: reviews with a negation ("not", "never", "n't", ...);
- ``contrast``: reviews with a contrast ("but", "however", "although", ...).
"""

from __future__ import annotations

import re

import numpy as np

from sentiment.config import DECISION_THRESHOLD

NEGATION = re.compile(r"\b(?:not|no|never|nothing|nobody|none|neither|nor|hardly|without)\b"
                      r"|n't\b", re.IGNORECASE)
CONTRAST = re.compile(r"\b(?:but|however|although|though|yet|nevertheless|whereas)\b",
                      re.IGNORECASE)
QUARTILES = ("length_q1", "length_q2", "length_q3", "length_q4")
SLICES = (*QUARTILES, "cut", "whole", "negation", "contrast")


def slice_masks(texts: list[str], token_counts: list[int] | None = None,
                max_length: int | None = None) -> dict[str, np.ndarray]:
    """{slice: boolean mask over `texts`}; `cut`/`whole` only when the token counts (without
    [CLS] and [SEP]) and the model's `max_length` are given."""
    words = np.array([len(t.split()) for t in texts])
    edges = np.quantile(words, [0.25, 0.5, 0.75]) if len(words) else np.zeros(3)
    quartile = np.searchsorted(edges, words, side="left")  # 0..3, ties to the lower quartile
    masks = {q: quartile == i for i, q in enumerate(QUARTILES)}
    if token_counts is not None and max_length is not None:
        cut = np.asarray(token_counts) > max_length - 2
        masks["cut"], masks["whole"] = cut, ~cut
    masks["negation"] = np.array([bool(NEGATION.search(t)) for t in texts])
    masks["contrast"] = np.array([bool(CONTRAST.search(t)) for t in texts])
    return masks


def slice_table(labels, probs, masks: dict[str, np.ndarray],
                threshold: float = DECISION_THRESHOLD) -> list[dict]:
    """One row per slice: {slice, n, accuracy (None for an empty slice)}."""
    y = np.asarray(labels, dtype=np.int64)
    right = (np.asarray(probs, dtype=np.float64) >= threshold).astype(np.int64) == y
    return [{"slice": name, "n": int(m.sum()),
             "accuracy": float(right[m].mean()) if m.any() else None}
            for name, m in masks.items()]

