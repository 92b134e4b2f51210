"""NBSVM's logistic-regression variant (NBLR; Wang & Manning 2012, "Baselines and Bigrams"):
binarized word n-grams scaled by their Naive Bayes log-count ratio, then a logistic regression.

The ratio of an n-gram is r = log((p / |p|_1) / (q / |q|_1)), where p and q are alpha plus the
number of positive and negative training reviews holding it: positive where the n-gram is
commoner among positive reviews. The classifier sees x * r, so the ratio acts as a per-feature
prior the regression then corrects. The logistic variant rather than the original SVM
interpolation, because its sigmoid is P(positive) without a separate calibration, which the
blended model and the promotion gate take as they take the encoder's.

Saved as plain files like the TF-IDF baseline (shared.py): the vocabulary as JSON, r, the
weights and the bias as safetensors, the settings (with ``"kind": "nbsvm"``) as JSON.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from sentiment.baseline import shared as files
from sentiment.baseline.shared import SETTINGS, VOCABULARY, WEIGHTS  # noqa: F401 (the format)
from sentiment.common.texts import checked_texts

KIND = "nbsvm"

# Token patterns by name (Config.baseline_nb_tokens); the pattern itself is saved, so a loaded
# model tokenizes as its training did whatever these names later mean.
TOKEN_PATTERNS = {
    # The TF-IDF baseline's: words of two or more letters or digits.
    "words": files.TOKEN_PATTERN,
    # Also one-letter words (the t of "don't", I, a) and the marks ! and ?, which n-grams turn
    # into negations and emphasis ("don t like", "great !"); better on the validation split
    # (benchmarks/README.md).
    "marks": r"(?u)\b\w+\b|[!?]",
}


@dataclass(frozen=True)
class NBSVMSettings:
    """What the vectorizer, the ratio and the classifier were built with (saved beside them)."""
    ngram_max: int
    min_df: int
    max_features: int
    c: float
    alpha: float = 1.0
    # Fixed choices, saved so a loaded model tokenizes exactly as in training.
    lowercase: bool = True
    strip_accents: str = "unicode"
    token_pattern: str = files.TOKEN_PATTERN

    def vectorizer(self, vocabulary=None):
        from sklearn.feature_extraction.text import CountVectorizer
        # binary: NBSVM counts in how many reviews an n-gram occurs, not how often; float64
        # because liblinear fits in float64 and would otherwise copy the matrix.
        kw = dict(ngram_range=(1, self.ngram_max), lowercase=self.lowercase,
                  strip_accents=self.strip_accents, token_pattern=self.token_pattern,
                  binary=True, dtype=np.float64)
        if vocabulary is None:
            return CountVectorizer(min_df=self.min_df, max_features=self.max_features, **kw)
        return files.rebuild(CountVectorizer, vocabulary, **kw)


def log_count_ratio(x, labels, alpha: float) -> np.ndarray:
    """r per column of the binary review-by-n-gram matrix x (float64)."""
    y = np.asarray(labels)
    pos = (y == 1).astype(np.float64)
    if not 0 < pos.sum() < len(y):
        raise ValueError("NBSVM needs positive and negative training reviews, got one class")
    p = alpha + np.asarray(x.T @ pos).ravel()
    q = alpha + np.asarray(x.T @ (1.0 - pos)).ravel()
    return np.log(p / p.sum()) - np.log(q / q.sum())


def scaled(x, r: np.ndarray):
    """x with each column multiplied by its ratio (a copy; x stays binary)."""
    xr = x.tocsr(copy=True)
    xr.data *= r[xr.indices]
    return xr


def fit_classifier(xr, labels, c: float) -> tuple[np.ndarray, float]:
    """(weights, bias) of the L2 logistic regression on the scaled features."""
    from sklearn.linear_model import LogisticRegression
    # liblinear's dual solver: single-threaded (seconds whatever else runs) and quicker than
    # the primal one when n-grams far outnumber reviews, as here.
    # liblinear shuffles with the global RNG unless given a seed: a fixed one makes the same
    # reviews give the same model, as the baseline and the blend's part must.
    clf = LogisticRegression(C=c, solver="liblinear", dual=True, max_iter=1000, random_state=0)
    clf.fit(xr, np.asarray(labels))
    return clf.coef_[0], float(clf.intercept_[0])


class NBSVMModel:
    """A fitted binary n-gram vectorizer, its log-count ratios and logistic-regression weights;
    ``predict_proba`` as SentimentModel's."""

    def __init__(self, settings: NBSVMSettings, vectorizer, r: np.ndarray, coef: np.ndarray,
                 intercept: float):
        self.settings, self.vectorizer = settings, vectorizer
        # Held as saved (float32), so a loaded model computes exactly what the fitted one did.
        self.r = np.asarray(r, dtype=np.float32)
        self.coef = np.asarray(coef, dtype=np.float32)
        self.intercept = float(np.float32(intercept))
        if not len(self.r) == len(self.coef) == len(vectorizer.vocabulary_):
            raise ValueError(f"vocabulary, ratios and weights disagree in size "
                             f"({len(vectorizer.vocabulary_)}, {len(self.r)}, {len(self.coef)})")
        # (x * r) @ w == x @ (r * w): one sparse product per batch.
        self._w = self.r.astype(np.float64) * self.coef.astype(np.float64)

    def decision_function(self, texts) -> np.ndarray:
        """Logits (float64): log-odds of the positive class."""
        texts = checked_texts(texts)
        if not texts:
            return np.zeros(0, dtype=np.float64)
        return self.logits(self.vectorizer.transform(texts))

    def logits(self, x) -> np.ndarray:
        """Logits of reviews already vectorized by self.vectorizer (so one transform can serve
        several classifiers over the same n-grams, as a settings search does)."""
        return x @ self._w + self.intercept

    def predict_proba(self, texts) -> np.ndarray:
        """P(positive) per text (float64)."""
        from scipy.special import expit  # no overflow warning on very negative logits
        return expit(self.decision_function(texts))

    def vocabulary(self) -> list[str]:
        return files.terms_of(self.vectorizer)

    def save(self, directory: str | Path) -> Path:
        return files.write_model(
            directory, self.vocabulary(),
            {"r": self.r, "coef": self.coef,
             "intercept": np.array([self.intercept], dtype=np.float32)},
            {files.KIND_KEY: KIND, **asdict(self.settings)})


def load(directory: str | Path) -> NBSVMModel:
    d = Path(directory)
    files.require_files(d, "NBSVM baseline")
    raw = files.read_settings(d, KIND)
    try:
        settings = NBSVMSettings(**raw)
    except TypeError as e:  # a key missing or unknown: an edited file
        raise ValueError(f"{d / SETTINGS}: damaged ({e})") from e
    vocabulary = files.read_vocabulary(d)
    arrays = files.read_arrays(d, ("r", "coef", "intercept"))
    sizes = (len(vocabulary), len(arrays["r"]), len(arrays["coef"]))
    if len(set(sizes)) != 1 or arrays["intercept"].shape != (1,):
        raise ValueError(f"{d}: vocabulary, ratios and weights disagree in size {sizes}")
    return NBSVMModel(settings, settings.vectorizer(vocabulary), arrays["r"], arrays["coef"],
                      float(arrays["intercept"][0]))


def vectorize(texts, settings: NBSVMSettings):
    """(fitted vectorizer, binary review-by-n-gram matrix) of the training texts."""
    vectorizer = settings.vectorizer()
    return vectorizer, vectorizer.fit_transform(checked_texts(texts))


def fit(texts, labels, settings: NBSVMSettings) -> tuple[NBSVMModel, float]:
    """(model, seconds): the vectorizer, the ratios and the classifier fitted on texts/labels."""
    t = time.perf_counter()
    vectorizer, x = vectorize(texts, settings)
    labels = np.asarray(labels)
    r = log_count_ratio(x, labels, settings.alpha)
    coef, intercept = fit_classifier(scaled(x, r), labels, settings.c)
    model = NBSVMModel(settings, vectorizer, r, coef, intercept)
    return model, time.perf_counter() - t


def settings_from_config(cfg) -> NBSVMSettings:
    return NBSVMSettings(ngram_max=cfg.baseline_nb_ngram_max, min_df=cfg.baseline_nb_min_df,
                         max_features=cfg.baseline_nb_max_features, c=cfg.baseline_nb_c,
                         alpha=cfg.baseline_nb_alpha,
                         token_pattern=TOKEN_PATTERNS[cfg.baseline_nb_tokens])


def train_and_test(cfg, splits) -> dict:
    """Fit on the training split, score the test split: the model, its test metrics and probs."""
    return files.fit_and_test(fit, settings_from_config(cfg), splits)
