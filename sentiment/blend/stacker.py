"""The blend rule: a logistic regression over the two parts' logits,

    P(positive) = sigmoid(w_encoder * logit(p_encoder) + w_bow * logit(p_bow) + bias),

fitted on the validation split only (never on test labels). Three numbers, saved as JSON. A
convex weight on probabilities is the special case the fit can find; the stacker also corrects
the two parts' calibration (a fine-tuned encoder is over-confident, a bag-of-words model under).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

STACKER_FILE = "stacker.json"
# Probabilities are clipped before the logit: a part that says exactly 0 or 1 must not give an
# infinite feature.
_CLIP = 1e-6


def logit(p) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), _CLIP, 1.0 - _CLIP)
    return np.log(p) - np.log1p(-p)


@dataclass(frozen=True)
class Stacker:
    w_encoder: float
    w_bow: float
    bias: float
    fitted_on: str          # which split the rule saw (always "validation" here)
    n: int                  # how many reviews it was fitted on

    def proba(self, p_encoder, p_bow) -> np.ndarray:
        z = self.w_encoder * logit(p_encoder) + self.w_bow * logit(p_bow) + self.bias
        return 1.0 / (1.0 + np.exp(-z))

    def encoder_share(self) -> float:
        """The encoder's share of the two weights: 1 = the encoder alone, 0 = bag-of-words."""
        total = abs(self.w_encoder) + abs(self.w_bow)
        return abs(self.w_encoder) / total if total else 0.5

    def save(self, directory: str | Path) -> Path:
        from sentiment.common.files import atomic_write_text
        path = Path(directory) / STACKER_FILE
        atomic_write_text(path, json.dumps(asdict(self), indent=2))
        return path


def load(directory: str | Path) -> Stacker:
    path = Path(directory) / STACKER_FILE
    try:
        raw = json.loads(path.read_text())
        stacker = Stacker(**{k: raw[k] for k in ("w_encoder", "w_bow", "bias", "fitted_on", "n")})
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: the blended model's stacker is missing") from None
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{path} is damaged ({type(e).__name__}: {e})") from None
    if not all(math.isfinite(x) for x in (stacker.w_encoder, stacker.w_bow, stacker.bias)):
        raise ValueError(f"{path} is damaged: non-finite weights")
    return stacker


def fit(p_encoder, p_bow, labels, c: float = 1.0) -> Stacker:
    """The stacker that best predicts `labels` from the two parts' probabilities (an L2
    logistic regression with inverse strength `c`). Give it validation data only."""
    from sklearn.linear_model import LogisticRegression
    labels = np.asarray(labels)
    if len(np.unique(labels)) < 2:
        raise ValueError("the blend needs both classes in the validation split")
    x = np.column_stack([logit(p_encoder), logit(p_bow)])
    lr = LogisticRegression(C=c, solver="lbfgs", max_iter=1000).fit(x, labels)
    return Stacker(w_encoder=float(lr.coef_[0, 0]), w_bow=float(lr.coef_[0, 1]),
                   bias=float(lr.intercept_[0]), fitted_on="validation", n=int(len(labels)))
