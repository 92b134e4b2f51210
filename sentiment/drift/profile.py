"""The profile of a model's training data, saved with each registered version: per feature
(``sentiment.drift.features``) its decile bins with the training share in each, a sample of
values for a two-sample test, and summary numbers; the training vocabulary; and the
validation split's score distribution (what the model said about held-out reviews).

Small on purpose (a few hundred kB of JSON): a sample of the training split is profiled.
"""

from __future__ import annotations

from typing import Optional

from sentiment.drift.features import SHARE_FEATURES, compute, vocabulary

PROFILE_FORMAT = "sentiment-data-profile/1"
PROFILE_ROWS = 5000    # training reviews profiled (a seeded sample)
SAMPLE_VALUES = 2000   # values kept per feature for the two-sample test
BINS = 10


def numeric_summary(values, share: bool = False) -> dict:
    """Bins (deciles of `values`, repeated edges merged), the share of values in each, a
    seeded sample, mean and quantiles. A 0/1 feature has the one edge 0.5."""
    import numpy as np
    v = np.asarray(values, dtype=float)
    if share:
        edges = [0.5]
    else:
        edges = sorted({round(float(q), 6) for q in np.quantile(v, np.linspace(0.1, 0.9, BINS - 1))})
    # A value equal to an edge goes to the bin below it: with a feature that is mostly 0 (the
    # deciles all 0), the edge 0 still parts the zeros from the rest.
    counts = np.bincount(np.searchsorted(edges, v, side="left"), minlength=len(edges) + 1)
    rng = np.random.default_rng(0)
    sample = v if len(v) <= SAMPLE_VALUES else rng.choice(v, SAMPLE_VALUES, replace=False)
    return {"kind": "share" if share else "numeric", "edges": edges,
            "proportions": [float(c) / len(v) for c in counts], "n": int(len(v)),
            "mean": float(v.mean()), "p05": float(np.quantile(v, 0.05)),
            "p50": float(np.quantile(v, 0.5)), "p95": float(np.quantile(v, 0.95)),
            "sample": [round(float(x), 5) for x in sample]}


def build_profile(train_texts: list[str], tokenizer, encoder: str,
                  encoder_revision: Optional[str], max_length: int,
                  valid_probs=None, threshold: float = 0.5) -> dict:
    """The profile of `train_texts` (a seeded sample of PROFILE_ROWS) and, when given, of the
    validation split's scores."""
    import numpy as np
    texts = [t for t in train_texts if isinstance(t, str) and t.strip()]
    if len(texts) > PROFILE_ROWS:
        idx = np.random.default_rng(0).choice(len(texts), PROFILE_ROWS, replace=False)
        texts = [texts[i] for i in sorted(idx)]
    # The vocabulary from one half, the features measured on the other: measured on the texts
    # it was built from, the out-of-vocabulary share would be 0 by construction, and any
    # unseen review would look drifted.
    vocab = vocabulary(texts[0::2])
    values = compute(texts[1::2], tokenizer, max_length, set(vocab))
    profile = {"format": PROFILE_FORMAT, "encoder": encoder, "encoder_revision": encoder_revision,
               "max_length": int(max_length), "rows": len(texts[1::2]), "vocabulary": vocab,
               "features": {k: numeric_summary(v, k in SHARE_FEATURES) for k, v in values.items()}}
    if valid_probs is not None and len(valid_probs):
        p = np.asarray(valid_probs, dtype=float)
        profile["validation"] = {"rows": int(len(p)),
                                 "positive_share": float((p >= threshold).mean()),
                                 "score": numeric_summary(p)}
    return profile
