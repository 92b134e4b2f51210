"""Test metrics from labels and P(positive)."""

from __future__ import annotations

import numpy as np

from sentiment.config import DECISION_THRESHOLD


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
    }
