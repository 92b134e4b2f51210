"""Test metrics from labels and P(positive)."""

from __future__ import annotations

import numpy as np

from sentiment.config import DECISION_THRESHOLD

# Equal-width bins of P(positive) for the calibration error, as in the calibration plot.
CALIBRATION_BINS = 10


def expected_calibration_error(labels, probs, bins: int = CALIBRATION_BINS) -> float:
    """ECE: the share-weighted gap between the mean P(positive) and the share of positives in
    each of `bins` equal-width bins of P(positive) (0: calibrated)."""
    y = np.asarray(labels, dtype=np.float64)
    p = np.asarray(probs, dtype=np.float64)
    if len(y) == 0:
        return float("nan")
    which = np.clip(np.digitize(p, np.linspace(0, 1, bins + 1)[1:-1]), 0, bins - 1)
    gap = sum(abs(p[which == b].mean() - y[which == b].mean()) * (which == b).sum()
              for b in range(bins) if (which == b).any())
    return float(gap / len(y))


def classification_metrics(labels, probs, threshold: float = DECISION_THRESHOLD) -> dict:
    from sklearn import metrics as skm
    y = np.asarray(labels, dtype=np.int64)
    p = np.clip(np.asarray(probs, dtype=np.float64), 1e-7, 1 - 1e-7)
    pred = (p >= threshold).astype(np.int64)
    both = len(np.unique(y)) == 2
    return {
        "n": int(len(y)),
        "accuracy": float(skm.accuracy_score(y, pred)),
        "precision": float(skm.precision_score(y, pred, zero_division=0)),
        "recall": float(skm.recall_score(y, pred, zero_division=0)),
        "f1": float(skm.f1_score(y, pred, zero_division=0)),
        # AUC is undefined on a one-class sample; NaN says so instead of raising.
        "roc_auc": float(skm.roc_auc_score(y, p)) if both else float("nan"),
        "log_loss": float(skm.log_loss(y, p, labels=[0, 1])),
        "ece": expected_calibration_error(y, p),
    }
