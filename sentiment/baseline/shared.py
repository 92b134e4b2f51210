"""What every bag-of-words baseline shares: its saved folder's files, the n-gram vocabulary as
JSON, rebuilding a scikit-learn vectorizer from that vocabulary, and the fit-then-test step
whose result the tracking code reads.

A saved baseline is three plain files (no pickle): the vocabulary (a JSON list of n-grams, an
n-gram's position being its column), safetensors arrays and a JSON settings file. A loaded
vectorizer tokenizes exactly as the fitted one did because the settings file keeps every
tokenization choice and the vocabulary keeps the column order.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from sentiment.common.files import atomic_path, atomic_write_text

VOCABULARY = "vocabulary.json"
WEIGHTS = "weights.safetensors"
SETTINGS = "baseline_config.json"
FILES = (VOCABULARY, WEIGHTS, SETTINGS)

# scikit-learn's default: words of two or more letters or digits, punctuation dropped. Spelled
# out so a saved model does not depend on a later scikit-learn keeping the same default.
TOKEN_PATTERN = r"(?u)\b\w\w+\b"


def _one_line(e: Exception) -> str:
    return " ".join(str(e).split()) or type(e).__name__


def terms_of(vectorizer) -> list[str]:
    """The fitted vectorizer's n-grams in column order."""
    vocab = vectorizer.vocabulary_
    terms = [""] * len(vocab)
    for term, i in vocab.items():
        terms[i] = term
    return terms


def require_files(directory: Path, what: str = "baseline") -> None:
    """One line naming every file a saved baseline lacks."""
    missing = [f for f in FILES if not (directory / f).is_file()]
    if missing:
        raise FileNotFoundError(f"{directory}: not a saved {what} (missing {', '.join(missing)})")


def write_vocabulary(directory: Path, terms: list[str]) -> None:
    atomic_write_text(directory / VOCABULARY, json.dumps(terms, ensure_ascii=False))


def read_json(directory: Path, name: str):
    path = directory / name
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as e:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise ValueError(f"{path}: damaged ({_one_line(e)})") from e


# The settings file names the model's kind; TF-IDF files predate kinds and have no "kind" key.
KIND_KEY, UNNAMED_KIND = "kind", "tfidf"


def _settings_object(directory: Path) -> dict:
    raw = read_json(directory, SETTINGS)
    if not isinstance(raw, dict):
        raise ValueError(f"{directory / SETTINGS}: damaged (not a JSON object)")
    return raw


def kind_of(directory: Path) -> str:
    """The kind a saved baseline's settings file names."""
    return str(_settings_object(directory).get(KIND_KEY, UNNAMED_KIND))


def read_settings(directory: Path, kind: str) -> dict:
    """The settings file's fields (the kind key left out), refused in one line when the folder
    holds another kind of baseline."""
    raw = _settings_object(directory)
    saved = str(raw.pop(KIND_KEY, UNNAMED_KIND))
    if saved != kind:
        raise ValueError(f"{directory}: a saved {saved!r} baseline, not {kind!r} "
                         "(sentiment.baseline.kinds.load reads any kind)")
    return raw


def read_vocabulary(directory: Path) -> list[str]:
    terms = read_json(directory, VOCABULARY)
    if not isinstance(terms, list) or not all(isinstance(t, str) for t in terms):
        raise ValueError(f"{directory / VOCABULARY}: damaged (not a JSON list of n-grams)")
    if len(set(terms)) != len(terms):
        raise ValueError(f"{directory / VOCABULARY}: damaged (an n-gram appears twice)")
    return terms


def write_arrays(directory: Path, arrays: dict[str, np.ndarray]) -> None:
    from safetensors.numpy import save_file
    with atomic_path(directory / WEIGHTS) as tmp:
        save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(tmp))


def write_model(directory: str | Path, terms: list[str], arrays: dict[str, np.ndarray],
                settings: dict) -> Path:
    """A bag-of-words model's three files in `directory`: vocabulary, weights, settings."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    write_vocabulary(d, terms)
    write_arrays(d, arrays)
    atomic_write_text(d / SETTINGS, json.dumps(settings, indent=2))
    return d


def read_arrays(directory: Path, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file
    path = directory / WEIGHTS
    try:
        arrays = load_file(str(path))
    except Exception as e:  # safetensors raises its own error types for a damaged header
        raise ValueError(f"{path}: damaged ({_one_line(e)})") from e
    missing = [n for n in names if n not in arrays]
    if missing:
        raise ValueError(f"{path}: damaged (no array {', '.join(missing)})")
    return arrays


def rebuild(vectorizer_cls, terms: list[str], **settings):
    """A vectorizer that transforms as the fitted one did: scikit-learn takes the vocabulary as
    given (columns in list order) and needs no fit for it."""
    vectorizer = vectorizer_cls(vocabulary=terms, **settings)
    # What the first transform would do anyway (scikit-learn's own check, used by transform):
    # done now, so vocabulary_ exists before any transform and a bad list fails at load time.
    vectorizer._validate_vocabulary()
    return vectorizer


def fit_and_test(fit, settings, splits) -> dict:
    """Fit ``fit(texts, labels, settings) -> (model, seconds)`` on the training split and score
    the test split: the model, its test metrics and probabilities, and what the tracked run
    logs beside them. Every kind returns these same keys."""
    from sentiment.evaluation.metrics import classification_metrics
    model, fit_s = fit(splits.train["text"], splits.train["label"], settings)
    t = time.perf_counter()
    probs = model.predict_proba(splits.test["text"].tolist())
    test_s = time.perf_counter() - t
    metrics = classification_metrics(splits.test["label"].to_numpy(), probs)
    return {"model": model, "test": metrics, "probs": probs,
            "timings": {"fit_s": fit_s, "test_s": test_s},
            "n_features": len(model.coef), "split_sizes": splits.sizes(),
            "data_fingerprint": splits.fingerprint}
