"""The bag-of-words baseline: it learns, it round-trips through plain files, it refuses bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sentiment.baseline import tfidf
from sentiment.config import Config
from sentiment.data.imdb import load_splits


@pytest.fixture(scope="module")
def fitted(imdb_dir):
    # 1,000 training and 400 test reviews: seconds, and enough for words to carry sentiment.
    cfg = Config.from_preset("smoke", data=str(imdb_dir), max_train=1000, max_valid=50,
                             max_test=400)
    splits = load_splits(cfg)
    return cfg, splits, tfidf.train_and_test(cfg, splits)


def test_baseline_learns_from_words(fitted):
    _, splits, res = fitted
    assert res["test"]["n"] == len(splits.test) == 400
    # Chance is 50%; a bag of words on 1,000 reviews is far above it, well short of perfect.
    assert 0.7 < res["test"]["accuracy"] < 1.0
    assert res["n_features"] > 1000


def test_settings_come_from_config(fitted):
    cfg, _, res = fitted
    s = res["model"].settings
    assert (s.ngram_max, s.min_df, s.max_features, s.c) == (
        cfg.baseline_ngram_max, cfg.baseline_min_df, cfg.baseline_max_features, cfg.baseline_c)
    assert any(" " in term for term in res["model"].vocabulary()), "no word pairs were kept"


def test_save_load_round_trip_without_pickle(fitted, tmp_path):
    _, splits, res = fitted
    d = res["model"].save(tmp_path / "baseline")
    names = sorted(p.name for p in d.iterdir())
    assert names == sorted([tfidf.VOCABULARY, tfidf.WEIGHTS, tfidf.SETTINGS])
    loaded = tfidf.load(d)
    texts = splits.test["text"].tolist()[:50] + ["Avengers was great!!", "Terrible. I hated it."]
    np.testing.assert_allclose(loaded.predict_proba(texts), res["model"].predict_proba(texts),
                               atol=1e-6)
    # Each file is plain data: JSON text or safetensors (a JSON header, then raw numbers).
    json.loads((d / tfidf.VOCABULARY).read_text(encoding="utf-8"))
    assert b"pickle" not in (d / tfidf.WEIGHTS).read_bytes()[:2000]


def test_load_names_the_missing_file(tmp_path):
    (tmp_path / tfidf.SETTINGS).write_text("{}")
    with pytest.raises(FileNotFoundError, match=f"missing {tfidf.VOCABULARY}, {tfidf.WEIGHTS}"):
        tfidf.load(tmp_path)


def test_load_refuses_mismatched_files(fitted, tmp_path):
    d = fitted[2]["model"].save(tmp_path / "b")
    vocab = json.loads((d / tfidf.VOCABULARY).read_text())
    (d / tfidf.VOCABULARY).write_text(json.dumps(vocab[:-1]))
    with pytest.raises(ValueError, match="disagree in size"):
        tfidf.load(d)


def test_non_string_input_is_named(fitted):
    with pytest.raises(TypeError, match=r"item\(s\) \[1\] are not"):
        fitted[2]["model"].predict_proba(["fine", 3])
    assert fitted[2]["model"].predict_proba([]).shape == (0,)


def test_config_rejects_bad_baseline_settings():
    with pytest.raises(ValueError, match="baseline_c must be > 0"):
        Config(baseline_c=0)
    with pytest.raises(ValueError, match="baseline_min_df must be >= 1"):
        Config(baseline_min_df=0)


def test_test_fingerprint_names_the_reviews_and_labels(fitted):
    import dataclasses
    import re
    _, splits, _ = fitted
    fp = splits.test_fingerprint
    assert re.fullmatch(r"[0-9a-f]{16}", fp)
    # Row order does not change what accuracy measures; a label or a review does.
    shuffled = splits.test.sample(frac=1.0, random_state=0).reset_index(drop=True)
    assert dataclasses.replace(splits, test=shuffled).test_fingerprint == fp
    flipped = splits.test.copy()
    flipped.loc[0, "label"] = 1 - flipped.loc[0, "label"]
    assert dataclasses.replace(splits, test=flipped).test_fingerprint != fp
    edited = splits.test.copy()
    edited.loc[0, "text"] = edited.loc[0, "text"] + "!"
    assert dataclasses.replace(splits, test=edited).test_fingerprint != fp
    assert dataclasses.replace(splits, test=splits.test.iloc[1:]).test_fingerprint != fp
