"""The NBSVM baseline (NB log-count ratios + logistic regression): it learns, its ratio has the
sign the counts imply, it round-trips through plain files, and the kind dispatch picks it."""

from __future__ import annotations

import json
import struct

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from sentiment.baseline import kinds, nbsvm, shared, tfidf
from sentiment.config import Config
from sentiment.data.imdb import Splits, load_splits

SETTINGS = nbsvm.NBSVMSettings(ngram_max=3, min_df=1, max_features=100_000, c=1.0, alpha=1.0)


def _reviews(n: int, seed: int) -> tuple[list[str], np.ndarray]:
    """Short reviews whose class shows in a few words (and in accented, upper-case ones, so a
    loaded vectorizer must normalize as the fitted one did)."""
    rng = np.random.default_rng(seed)
    pos = ["great", "wonderful", "Café", "LOVED it"]
    neg = ["awful", "boring", "naïve", "hated it"]
    filler = "the movie film plot actor scene story was and a of it this".split()
    texts, labels = [], []
    for i in range(n):
        words = list(rng.choice(filler + (pos if i % 2 else neg) * 2, int(rng.integers(5, 30))))
        texts.append(" ".join(words))
        labels.append(i % 2)
    return texts, np.array(labels)


@pytest.fixture(scope="module")
def synthetic():
    texts, labels = _reviews(300, 0)
    model, _ = nbsvm.fit(texts, labels, SETTINGS)
    return model, _reviews(60, 1)


def test_log_count_ratio_has_the_sign_of_the_counts():
    # n-gram 0 only in positive reviews, 1 only in negative ones, 2 once in each class.
    x = sparse.csr_matrix(np.array([[1, 0, 1], [1, 0, 0], [0, 1, 1], [0, 1, 0]], dtype=float))
    r = nbsvm.log_count_ratio(x, [1, 1, 0, 0], alpha=1.0)
    # p = 1 + [2, 0, 1] = [3, 1, 2], q = [1, 3, 2]; both sum to 6.
    np.testing.assert_allclose(r, [np.log(3.0), -np.log(3.0), 0.0], atol=1e-12)
    # A larger alpha pulls every ratio towards 0.
    assert np.all(np.abs(nbsvm.log_count_ratio(x, [1, 1, 0, 0], alpha=10.0)) < np.abs(r) + 1e-12)
    with pytest.raises(ValueError, match="one class"):
        nbsvm.log_count_ratio(x, [1, 1, 1, 1], alpha=1.0)


def test_fit_learns_the_class_words(synthetic):
    model, (texts, labels) = synthetic
    probs = model.predict_proba(texts)
    assert probs.dtype == np.float64 and probs.shape == (60,)
    assert ((probs >= 0.5) == labels).mean() > 0.9
    terms = model.vocabulary()
    assert model.r[terms.index("wonderful")] > 0 > model.r[terms.index("awful")]
    # Folded to lower case without accents, as the settings say (and the loaded model must).
    assert model.r[terms.index("cafe")] > 0 and "café" not in terms and "loved" in terms
    assert any(t.count(" ") == 2 for t in terms), "no word triples were kept"
    from scipy.special import expit
    np.testing.assert_array_equal(expit(model.decision_function(texts)), probs)


def _is_plain_data(path) -> bool:
    """JSON text, or safetensors: an 8-byte header length, a JSON header, then raw numbers
    exactly as long as the header's tensors say (room for nothing else, pickle included)."""
    raw = path.read_bytes()
    if path.suffix == ".json":
        json.loads(raw.decode("utf-8"))
        return True
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    ends = [v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"]
    return len(raw) == 8 + n + max(ends)


def test_save_load_round_trip_without_pickle(synthetic, tmp_path):
    model, (texts, _) = synthetic
    d = model.save(tmp_path / "nb")
    assert sorted(p.name for p in d.iterdir()) == sorted(shared.FILES)
    for p in d.iterdir():
        assert b"pickle" not in p.read_bytes() and _is_plain_data(p), p.name
    assert json.loads((d / shared.SETTINGS).read_text())["kind"] == "nbsvm"
    loaded = nbsvm.load(d)
    assert loaded.settings == model.settings
    assert loaded.vocabulary() == model.vocabulary()
    texts = texts + ["CAFÉ was Wonderful!!", "naive, boring... HATED IT", "", "unseen words only"]
    np.testing.assert_array_equal(loaded.predict_proba(texts), model.predict_proba(texts))
    np.testing.assert_array_equal(loaded.decision_function(texts), model.decision_function(texts))


def test_marks_tokens_round_trip(tmp_path):
    texts, labels = _reviews(200, 2)
    texts = [t + (" great !" if y else " don't ?") for t, y in zip(texts, labels)]
    settings = nbsvm.NBSVMSettings(ngram_max=2, min_df=1, max_features=100_000, c=1.0,
                                   token_pattern=nbsvm.TOKEN_PATTERNS["marks"])
    model, _ = nbsvm.fit(texts, labels, settings)
    terms = model.vocabulary()
    assert {"!", "?", "t", "great !", "don t"} <= set(terms)
    loaded = kinds.load(model.save(tmp_path / "nb"))
    assert loaded.settings.token_pattern == nbsvm.TOKEN_PATTERNS["marks"]
    probe = ["Great!", "I don't know?", "a b c ! ?"]
    np.testing.assert_array_equal(loaded.predict_proba(probe), model.predict_proba(probe))


def test_load_names_the_missing_file(synthetic, tmp_path):
    d = synthetic[0].save(tmp_path / "nb")
    (d / shared.VOCABULARY).unlink()
    with pytest.raises(FileNotFoundError, match=rf"\(missing {shared.VOCABULARY}\)$"):
        nbsvm.load(d)


@pytest.mark.parametrize("name, damage, message", [
    (shared.VOCABULARY, lambda p: p.write_text(p.read_text()[:-10]), "vocabulary.json: damaged"),
    (shared.VOCABULARY, lambda p: p.write_text('["a", "a"]'), "appears twice"),
    (shared.WEIGHTS, lambda p: p.write_bytes(p.read_bytes()[:100]), "weights.safetensors: damaged"),
    (shared.SETTINGS, lambda p: p.write_text('{"kind": "nbsvm", "c": 1}'),
     "baseline_config.json: damaged"),
    (shared.SETTINGS, lambda p: p.write_text("[1, 2]"), "baseline_config.json: damaged"),
])
def test_load_names_the_damaged_file_in_one_line(synthetic, tmp_path, name, damage, message):
    d = synthetic[0].save(tmp_path / "nb")
    damage(d / name)
    with pytest.raises(ValueError, match=message) as e:
        nbsvm.load(d)
    assert "\n" not in str(e.value)


def test_load_refuses_arrays_of_another_size(synthetic, tmp_path):
    d = synthetic[0].save(tmp_path / "nb")
    vocab = json.loads((d / shared.VOCABULARY).read_text(encoding="utf-8"))
    (d / shared.VOCABULARY).write_text(json.dumps(vocab[:-1]), encoding="utf-8")
    with pytest.raises(ValueError, match="disagree in size"):
        nbsvm.load(d)
    shared.write_vocabulary(d, vocab)
    shared.write_arrays(d, {"coef": synthetic[0].coef, "intercept": np.zeros(1, np.float32)})
    with pytest.raises(ValueError, match="weights.safetensors: damaged \\(no array r\\)"):
        nbsvm.load(d)


def test_non_string_input_is_named(synthetic):
    with pytest.raises(TypeError, match=r"item\(s\) \[1\] are not"):
        synthetic[0].predict_proba(["fine", 3])
    assert synthetic[0].predict_proba([]).shape == (0,)


# --- the kind dispatch --------------------------------------------------------------------

def _splits(seed: int = 0) -> Splits:
    frame = lambda n, s: pd.DataFrame(dict(zip(("text", "label"), _reviews(n, s))))  # noqa: E731
    return Splits(train=frame(200, seed), valid=frame(20, seed + 1), test=frame(40, seed + 2),
                  source="synthetic", fingerprint="synthetic")


def test_kind_picks_the_model_and_load_reads_the_saved_kind(tmp_path):
    splits = _splits()
    results = {kind: kinds.train_and_test(Config(baseline_kind=kind, baseline_nb_min_df=1,
                                                 baseline_min_df=1), splits)
               for kind in ("tfidf", "nbsvm")}
    assert isinstance(results["tfidf"]["model"], tfidf.BaselineModel)
    assert isinstance(results["nbsvm"]["model"], nbsvm.NBSVMModel)
    # Callers read one result shape whatever the kind.
    assert results["tfidf"].keys() == results["nbsvm"].keys()
    assert results["tfidf"]["timings"].keys() == results["nbsvm"]["timings"].keys()
    texts = splits.test["text"].tolist()
    for kind, res in results.items():
        d = res["model"].save(tmp_path / kind)
        loaded = kinds.load(d)
        assert type(loaded) is type(res["model"]), kind
        np.testing.assert_allclose(loaded.predict_proba(texts), res["probs"], atol=1e-6)
    # The TF-IDF files stay as they were before kinds existed (no kind key): absent means tfidf.
    assert "kind" not in json.loads((tmp_path / "tfidf" / shared.SETTINGS).read_text())
    with pytest.raises(ValueError, match="a saved 'tfidf' baseline, not 'nbsvm'"):
        nbsvm.load(tmp_path / "tfidf")
    with pytest.raises(ValueError, match="a saved 'nbsvm' baseline, not 'tfidf'"):
        tfidf.load(tmp_path / "nbsvm")
    with pytest.raises(FileNotFoundError, match="missing"):
        kinds.load(tmp_path / "nowhere")


def test_config_names_the_kinds_and_rejects_others():
    choices = Config.__dataclass_fields__["baseline_kind"].metadata["choices"]
    assert tuple(choices) == tuple(kinds.KINDS)
    assert Config().baseline_kind == "tfidf"
    with pytest.raises(ValueError, match="baseline_kind='svm' is not one of"):
        Config(baseline_kind="svm")
    with pytest.raises(ValueError, match="baseline_nb_alpha must be > 0"):
        Config(baseline_nb_alpha=0)
    with pytest.raises(ValueError, match="baseline_nb_min_df must be >= 1"):
        Config(baseline_nb_min_df=0)
    with pytest.raises(ValueError, match="unknown baseline kind 'svm'"):
        kinds.module_for("svm")


def test_settings_come_from_config():
    cfg = Config(baseline_kind="nbsvm", baseline_nb_ngram_max=2, baseline_nb_min_df=3,
                 baseline_nb_max_features=1234, baseline_nb_c=0.5, baseline_nb_alpha=0.25,
                 baseline_nb_tokens="marks")
    s = nbsvm.settings_from_config(cfg)
    assert (s.ngram_max, s.min_df, s.max_features, s.c, s.alpha) == (2, 3, 1234, 0.5, 0.25)
    assert s.token_pattern == nbsvm.TOKEN_PATTERNS["marks"]
    tokens = Config.__dataclass_fields__["baseline_nb_tokens"].metadata["choices"]
    assert set(tokens) == set(nbsvm.TOKEN_PATTERNS)


@pytest.mark.slow
def test_learns_from_real_reviews(imdb_dir):
    # 600 training and 300 test reviews: about a second, and enough for n-grams to carry
    # sentiment; chance is 50%.
    cfg = Config.from_preset("smoke", data=str(imdb_dir), max_train=600, max_valid=50,
                             max_test=300, baseline_kind="nbsvm")
    res = kinds.train_and_test(cfg, load_splits(cfg))
    assert res["test"]["n"] == 300
    assert 0.7 < res["test"]["accuracy"] < 1.0
    assert res["n_features"] == len(res["model"].vocabulary()) > 1000
