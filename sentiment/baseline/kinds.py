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


def describe(kind: str, settings, n_features: int) -> str:
    """The model in a phrase, for run and version descriptions."""
    grams = f"word 1-{settings.ngram_max} grams ({n_features} features)"
    if kind == "nbsvm":
        return (f"NBSVM: binarized {grams} scaled by Naive Bayes log-count ratios + logistic "
                f"regression (C={settings.c:g})")
    return f"TF-IDF {grams} + logistic regression (C={settings.c:g})"


def baseline_splits(cfg):
    """The splits the bag-of-words model learns and is tested on: the model's validation and
    test reviews, and ``cfg.baseline_max_train`` training reviews (None: the whole training
    split, also when the model itself trains on a subset)."""
    from sentiment.data.imdb import load_splits
    return load_splits(cfg.replace(max_train=cfg.baseline_max_train))


def load(directory: str | Path):
    """The saved baseline in `directory`, whichever kind its settings file names."""
    d = Path(directory)
    shared.require_files(d)
    return module_for(shared.kind_of(d)).load(d)
