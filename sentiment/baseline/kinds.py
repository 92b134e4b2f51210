"""The bag-of-words baseline of either kind: ``train_and_test`` fits the kind the config names,
``load`` reads the kind a saved folder names, so callers need not know which one it is.

kinds: "tfidf" (TF-IDF word n-grams + logistic regression, tfidf.py) and "nbsvm" (binarized
word n-grams scaled by Naive Bayes log-count ratios + logistic regression, nbsvm.py).
"""

from __future__ import annotations

from pathlib import Path

from sentiment.baseline import nbsvm, shared, tfidf

KINDS = {"tfidf": tfidf, "nbsvm": nbsvm}


def module_for(kind: str):
    try:
        return KINDS[kind]
    except KeyError:
        raise ValueError(f"unknown baseline kind {kind!r}; choose one of {list(KINDS)}") from None


def train_and_test(cfg, splits) -> dict:
    """cfg.baseline_kind's model fitted on the training split and scored on the test split
    (the same keys for every kind: model, test, probs, timings, n_features, split_sizes,
    data_fingerprint)."""
    return module_for(cfg.baseline_kind).train_and_test(cfg, splits)


def load(directory: str | Path):
    """The saved baseline in `directory`, whichever kind its settings file names."""
    d = Path(directory)
    shared.require_files(d)
    return module_for(shared.kind_of(d)).load(d)
