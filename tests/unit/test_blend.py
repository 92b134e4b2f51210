"""The blend: the stacker's fit, file and loading; the rule sees validation labels only; the
blended model's probabilities are the stacker over its parts'."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from sentiment.baseline.shared import WEIGHTS
from sentiment.blend import stacker as stacker_mod
from sentiment.blend.blended_model import BlendedModel
from sentiment.config import Config

POS = ["a great film, wonderful acting", "loved it, a superb and moving story",
       "brilliant, funny and warm", "excellent cast, great script, a joy"]
NEG = ["a terrible film, awful acting", "hated it, a boring and dull story",
       "dreadful, stupid and cold", "worst cast, bad script, a waste"]


def _frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    texts = [f"{rng.choice(POS if i % 2 else NEG)} number {i}" for i in range(n)]
    return pd.DataFrame({"text": texts, "label": [i % 2 for i in range(n)]})


@pytest.fixture()
def data(tmp_path):
    _frame(200, 0).to_parquet(tmp_path / "train.parquet", index=False)
    _frame(80, 1).to_parquet(tmp_path / "test.parquet", index=False)
    return tmp_path


def _cfg(data_dir, **kw) -> Config:
    return Config.from_preset("smoke", data=str(data_dir), max_train=40, max_valid=40, max_test=80,
                              baseline_max_train=None, baseline_kind="nbsvm", baseline_nb_min_df=1,
                              blend=True, **kw)


def test_stacker_round_trip_and_damaged_file(tmp_path):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 300)
    p_enc = np.clip(labels * 0.6 + rng.normal(0.2, 0.2, 300), 0.01, 0.99)
    p_bow = np.clip(labels * 0.4 + rng.normal(0.3, 0.2, 300), 0.01, 0.99)
    s = stacker_mod.fit(p_enc, p_bow, labels)
    assert s.fitted_on == "validation" and s.n == 300
    assert s.w_encoder > 0 and s.w_bow > 0  # both parts carry signal here
    s.save(tmp_path)
    again = stacker_mod.load(tmp_path)
    assert again == s
    np.testing.assert_array_equal(again.proba(p_enc, p_bow), s.proba(p_enc, p_bow))
    (tmp_path / stacker_mod.STACKER_FILE).write_text('{"w_encoder": 1.0}')
    with pytest.raises(ValueError, match=f"{stacker_mod.STACKER_FILE} is damaged"):
        stacker_mod.load(tmp_path)
    (tmp_path / stacker_mod.STACKER_FILE).unlink()
    with pytest.raises(FileNotFoundError, match="stacker is missing"):
        stacker_mod.load(tmp_path)


def test_stacker_needs_both_classes():
    with pytest.raises(ValueError, match="both classes"):
        stacker_mod.fit([0.2, 0.3], [0.4, 0.1], [1, 1])


def test_the_rule_never_sees_test_labels(data, tmp_path):
    """Flipping every test label leaves the fitted rule, and so the blend's probabilities,
    exactly as they were: only the test metrics computed from them change."""
    from sentiment.blend.fit import fit_blend
    from sentiment.data.imdb import load_splits
    cfg = _cfg(data)
    splits = load_splits(cfg)
    rng = np.random.default_rng(3)
    valid_p = np.clip(splits.valid["label"].to_numpy() * 0.5 + rng.uniform(0.1, 0.4, 40), 0, 1)
    test_p = rng.uniform(0, 1, 80)  # all 80 test reviews: flipping labels keeps the rows
    first = fit_blend(cfg, splits, valid_p, test_p, tmp_path / "m1")

    flipped = data.parent / "flipped"
    flipped.mkdir()
    (flipped / "train.parquet").write_bytes((data / "train.parquet").read_bytes())
    test = pd.read_parquet(data / "test.parquet")
    test["label"] = 1 - test["label"]
    test.to_parquet(flipped / "test.parquet", index=False)
    cfg2 = _cfg(flipped)
    splits2 = load_splits(cfg2)
    assert (splits2.test["label"].to_numpy() != splits.test["label"].to_numpy()).all()
    second = fit_blend(cfg2, splits2, valid_p, test_p, tmp_path / "m2")
    assert first["stacker"] == second["stacker"]
    np.testing.assert_array_equal(first["test_probs"], second["test_probs"])
    saved = json.loads((tmp_path / "m1" / "blend" / stacker_mod.STACKER_FILE).read_text())
    assert saved["fitted_on"] == "validation" and saved["n"] == len(splits.valid)


def test_parts_must_be_scored_on_the_same_reviews(data, tmp_path):
    from sentiment.blend.fit import fit_blend
    from sentiment.data.imdb import load_splits
    cfg = _cfg(data)
    other = load_splits(cfg.replace(split_seed=7))  # another validation split
    with pytest.raises(ValueError, match="valid split differs"):
        fit_blend(cfg, other, np.full(40, 0.5), np.full(80, 0.5), tmp_path / "m")


class _Const:
    def __init__(self, p):
        self.p = p

    def predict_proba(self, texts):
        return np.full(len(texts), self.p)


def test_blended_model_is_the_stacker_over_its_parts():
    s = stacker_mod.Stacker(w_encoder=2.0, w_bow=1.0, bias=-0.5, fitted_on="validation", n=10)
    model = BlendedModel(_Const(0.8), _Const(0.3), s)
    parts = model.parts_proba(["a", "b"])
    expected = 1 / (1 + np.exp(-(2 * np.log(0.8 / 0.2) + np.log(0.3 / 0.7) - 0.5)))
    np.testing.assert_allclose(parts["blend"], [expected, expected])
    assert [p["label"] for p in model.predict(["a"])] == ["pos" if expected >= 0.5 else "neg"]


def test_the_run_folders_bag_of_words_copy_is_reused_only_when_trained_as_configured(
        data, tmp_path, monkeypatch):
    """The baseline run's copy in the run folder stands in for a second fit of the same model;
    a copy trained with other settings (or damaged) is ignored and the part is fitted."""
    from sentiment.baseline import kinds, run_copy
    from sentiment.blend.fit import fit_blend
    from sentiment.data.imdb import load_splits
    cfg = _cfg(data, run_dir=str(tmp_path / "run"))
    splits = load_splits(cfg)
    bow_splits = kinds.baseline_splits(cfg)
    res = kinds.train_and_test(cfg, bow_splits)
    run_copy.save(res["model"], cfg.run_dir, run_copy.key(cfg, bow_splits))
    fits = []
    real = kinds.train_and_test
    monkeypatch.setattr(kinds, "train_and_test", lambda c, s: fits.append(1) or real(c, s))
    valid_p, test_p = np.full(40, 0.6), np.linspace(0.05, 0.95, 80)
    reused = fit_blend(cfg, splits, valid_p, test_p, tmp_path / "m1")
    assert fits == [] and reused["bag_of_words"]["reused"]
    np.testing.assert_allclose(reused["parts"]["bag_of_words"], res["probs"])

    other = cfg.replace(baseline_nb_c=cfg.baseline_nb_c * 2)
    assert run_copy.key(other, bow_splits) != run_copy.key(cfg, bow_splits)
    refit = fit_blend(other, splits, valid_p, test_p, tmp_path / "m2")
    assert fits == [1] and not refit["bag_of_words"]["reused"]

    (tmp_path / "run" / run_copy.FOLDER / WEIGHTS).write_bytes(b"damaged")
    assert run_copy.load(cfg.run_dir, run_copy.key(cfg, bow_splits)) is None
