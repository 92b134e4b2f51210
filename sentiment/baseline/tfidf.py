"""The bag-of-words baseline a promoted model must beat: TF-IDF over word 1-2 grams and a
logistic regression, trained on the same training split and scored on the same test split.

It is stored as plain files (a JSON vocabulary, safetensors weights, a JSON config), so it
loads with no pickle: ``save``/``load`` rebuild scikit-learn's vectorizer from the vocabulary
and the IDF weights, and the logistic regression is one dot product.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from sentiment.baseline import shared as files
from sentiment.baseline.shared import SETTINGS, VOCABULARY, WEIGHTS  # noqa: F401 (the format)
from sentiment.common.texts import checked_texts


@dataclass(frozen=True)
class BaselineSettings:
    """What the vectorizer and the classifier were built with (saved beside the weights)."""
    ngram_max: int
    min_df: int
    max_features: int
    c: float
    # Fixed choices, saved so a loaded model tokenizes exactly as in training.
    lowercase: bool = True
    strip_accents: str = "unicode"
    sublinear_tf: bool = True

    def vectorizer(self, vocabulary=None):
        from sklearn.feature_extraction.text import TfidfVectorizer
        kw = dict(ngram_range=(1, self.ngram_max), lowercase=self.lowercase,
                  strip_accents=self.strip_accents, sublinear_tf=self.sublinear_tf,
                  dtype=np.float32)
        if vocabulary is None:
            return TfidfVectorizer(min_df=self.min_df, max_features=self.max_features, **kw)
        return files.rebuild(TfidfVectorizer, vocabulary, **kw)


class BaselineModel:
    """A fitted TF-IDF vectorizer and logistic-regression weights; ``predict_proba`` as
    SentimentModel's."""

    def __init__(self, settings: BaselineSettings, vectorizer, coef: np.ndarray, intercept: float):
        self.settings, self.vectorizer = settings, vectorizer
        self.coef = np.asarray(coef, dtype=np.float32)
        self.intercept = float(intercept)

    def predict_proba(self, texts) -> np.ndarray:
        texts = checked_texts(texts)
        if not texts:
            return np.zeros(0, dtype=np.float32)
        z = self.vectorizer.transform(texts) @ self.coef + self.intercept
        return (1.0 / (1.0 + np.exp(-z))).astype(np.float32)

    def vocabulary(self) -> list[str]:
        return files.terms_of(self.vectorizer)

    def save(self, directory: str | Path) -> Path:
        return files.write_model(
            directory, self.vocabulary(),
            {"idf": self.vectorizer.idf_.astype(np.float32), "coef": self.coef,
             "intercept": np.array([self.intercept], dtype=np.float32)},
            asdict(self.settings))


def load(directory: str | Path) -> BaselineModel:
    d = Path(directory)
    files.require_files(d)
    raw = files.read_settings(d, "tfidf")
    try:
        settings = BaselineSettings(**raw)
    except TypeError as e:  # a key missing or unknown: an edited file
        raise ValueError(f"{d / SETTINGS}: damaged ({e})") from e
    vocabulary = files.read_vocabulary(d)
    weights = files.read_arrays(d, ("idf", "coef", "intercept"))
    if not (len(vocabulary) == len(weights["idf"]) == len(weights["coef"])):
        raise ValueError(f"{d}: vocabulary, IDF and weights disagree in size "
                         f"({len(vocabulary)}, {len(weights['idf'])}, {len(weights['coef'])})")
    vectorizer = settings.vectorizer(vocabulary)
    vectorizer.idf_ = weights["idf"]
    return BaselineModel(settings, vectorizer, weights["coef"], float(weights["intercept"][0]))


def fit(texts, labels, settings: BaselineSettings) -> tuple[BaselineModel, float]:
    """(model, seconds): the vectorizer and the classifier fitted on texts/labels."""
    from sklearn.linear_model import LogisticRegression
    t = time.perf_counter()
    vectorizer = settings.vectorizer()
    x = vectorizer.fit_transform(list(texts))
    # liblinear: exact for binary problems of this size, and single-threaded by design, so the
    # baseline costs seconds whatever else runs.
    clf = LogisticRegression(C=settings.c, solver="liblinear", max_iter=1000)
    clf.fit(x, np.asarray(labels))
    model = BaselineModel(settings, vectorizer, clf.coef_[0], clf.intercept_[0])
    return model, time.perf_counter() - t


def settings_from_config(cfg) -> BaselineSettings:
    return BaselineSettings(ngram_max=cfg.baseline_ngram_max, min_df=cfg.baseline_min_df,
                            max_features=cfg.baseline_max_features, c=cfg.baseline_c)


def train_and_test(cfg, splits) -> dict:
    """Fit on the training split, score the test split: the model, its test metrics and probs."""
    return files.fit_and_test(fit, settings_from_config(cfg), splits)
