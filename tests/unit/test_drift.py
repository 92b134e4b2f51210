"""Drift against a training profile (``sentiment.drift``): IMDB test reviews do not drift from
the training split; a file of one-line opinions drifts in length and vocabulary, one of
reviews in other languages in vocabulary and characters; scores far from the validation
split's drift in the predicted-positive share."""

from __future__ import annotations

import pytest

from conftest import imdb_data

pytestmark = pytest.mark.slow

ONE_LINERS = ["Loved it!", "Meh.", "Best movie ever", "Total waste of time", "so boring lol",
              "10/10 would watch again", "Not my thing", "Great acting, weak plot", "Awful.",
              "Brilliant!!!", "Fell asleep halfway", "A must see", "Overrated imo",
              "Cried at the end", "Two thumbs up"] * 2
OTHER_LANGUAGES = [
    "La película es una obra maestra, los actores están increíbles y la historia me atrapó.",
    "Qué aburrimiento, no la recomiendo a nadie, perdí dos horas de mi vida viéndola.",
    "Der Film war wirklich langweilig und die Schauspieler haben überhaupt nicht überzeugt.",
    "Ein wunderbarer Film mit großartiger Musik und einer bewegenden Geschichte über Freundschaft.",
    "Un film magnifique, des acteurs remarquables et une mise en scène très soignée.",
    "Je me suis ennuyé du début à la fin, le scénario ne tient pas debout une seconde.",
    "Il film è lento, ma la fotografia è splendida e il finale mi ha commosso davvero.",
    "Uma história previsível, com diálogos fracos; não vale o preço do bilhete.",
] * 3


@pytest.fixture(scope="module")
def profile_and_tokenizer():
    import numpy as np
    import pandas as pd

    from sentiment.drift.profile import build_profile
    from sentiment.encoding.encoders import load_tokenizer, resolve
    if imdb_data() is None:
        pytest.skip("IMDB parquet data not found (set IMDB_DATA)")
    tokenizer = load_tokenizer(resolve("minilm"))
    train = pd.read_parquet(imdb_data() / "train.parquet", columns=["text"])
    texts = train["text"].sample(1000, random_state=0).tolist()
    valid = np.random.default_rng(0).beta(2, 2, 500)  # a validation split's scores, ~half positive
    return build_profile(texts, tokenizer, "minilm", None, 256, valid), tokenizer


def test_imdb_test_reviews_do_not_drift(profile_and_tokenizer):
    import pandas as pd

    from sentiment.drift.compare import input_drift
    profile, tokenizer = profile_and_tokenizer
    test = pd.read_parquet(imdb_data() / "test.parquet", columns=["text"])
    report = input_drift(profile, test["text"].sample(300, random_state=1).tolist(), tokenizer)
    assert report["checked"] and report["rows"] == 300
    assert report["drifted"] == [], report["features"]


@pytest.mark.parametrize("texts, expected", [(ONE_LINERS, {"tokens", "cut", "oov_share"}),
                                             (OTHER_LANGUAGES, {"tokens", "oov_share",
                                                                "non_ascii"})],
                         ids=["one-line opinions", "other languages"])
def test_made_up_files_drift_in_length_and_vocabulary(profile_and_tokenizer, texts, expected):
    from sentiment.drift.compare import input_drift, summary_line
    profile, tokenizer = profile_and_tokenizer
    report = input_drift(profile, texts, tokenizer)
    assert expected <= set(report["drifted"]), report["features"]
    line = summary_line({"input": report, "setting": "warn"})
    assert line.startswith("Drift: ") and "tokens (PSI" in line and "oov_share" in line


def test_too_few_reviews_are_not_tested(profile_and_tokenizer):
    from sentiment.drift.compare import MIN_ROWS, input_drift
    profile, tokenizer = profile_and_tokenizer
    report = input_drift(profile, ONE_LINERS[:MIN_ROWS - 1], tokenizer)
    assert not report["checked"] and "fewer than" in report["reason"]


def test_scores_far_from_validation_drift_in_positive_share(profile_and_tokenizer):
    import numpy as np

    from sentiment.drift.compare import prediction_drift
    profile, _ = profile_and_tokenizer
    rng = np.random.default_rng(1)
    alike = prediction_drift(profile, rng.beta(2, 2, 400).tolist(), 0.5)
    assert alike["checked"] and alike["drifted"] == []
    all_positive = prediction_drift(profile, rng.uniform(0.8, 1.0, 400).tolist(), 0.5)
    assert {"score", "positive_share"} <= set(all_positive["drifted"])


def test_drift_fail_stops_a_folder_run_before_scoring(profile_and_tokenizer, tmp_path):
    import pandas as pd

    from sentiment.scoring.config import ScoringConfig
    from sentiment.scoring.folder import score_folder
    from sentiment.scoring.manifest import Manifest, plan_inputs
    profile, _ = profile_and_tokenizer
    inp, out = tmp_path / "incoming", tmp_path / "scores"
    inp.mkdir()
    pd.DataFrame({"text": ONE_LINERS}).to_parquet(inp / "tweets.parquet", index=False)
    todo, _ = plan_inputs(Manifest(out), [str(inp / "tweets.parquet")], "v1", False)
    job = {"output": str(out), "todo": [p.to_dict() for p in todo], "version_key": "v1",
           "model_uri": "models:/m/1", "model_version": 1, "run_id": "r", "date": "2026-12-01",
           "profile": profile}
    scored = []

    def submit(texts):
        scored.append(texts)
        raise AssertionError("nothing may be scored")
    with pytest.raises(ValueError, match=r"drift from the training data, so nothing was scored "
                                         r"\(drift=fail\): tokens \(PSI"):
        score_folder(ScoringConfig(input="x", output="y", drift="fail"), job, submit,
                     report=lambda _: None)
    assert not scored and Manifest(out).records() == []
