"""A blended model through MLflow: trained and logged with each part's test metrics, registered
as one version whose folder holds both parts as plain files, loaded by name with the same
probabilities, and shown part by part in the gate's decision."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sentiment.config import Config

pytestmark = pytest.mark.slow
pytest.importorskip("mlflow")

TEXTS = ["Justice League is terrible. I hated it.", "Avengers was great!!",
         "A slow, muddled plot, but the score is lovely."]
NAME = "imdb-sentiment-blend-test"


@pytest.fixture(scope="module")
def blended(tmp_path_factory, imdb_dir):
    from sentiment.tracking import registry, training_run
    tmp = tmp_path_factory.mktemp("blend")
    mp = pytest.MonkeyPatch()
    mp.setenv("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING", "false")
    try:
        cfg = Config.from_preset("smoke", data=str(imdb_dir), encoder="random-tiny",
                                 run_dir=str(tmp / "run"), cache_dir=str(tmp / "cache"),
                                 tracking_uri=f"sqlite:///{tmp}/mlflow.db", progress=False,
                                 model_name=NAME, experiment="blend-test", num_threads=1,
                                 blend=True, baseline_kind="nbsvm", baseline_nb_min_df=1)
        res = training_run.train_tracked(cfg)
        reg = registry.register_model(res["run_id"], res["run_dir"], cfg)
        yield cfg, res, reg
    finally:
        mp.undo()


def test_run_logs_each_part_and_the_blend(blended):
    from mlflow import MlflowClient
    cfg, res, _ = blended
    metrics = MlflowClient(tracking_uri=cfg.tracking_uri).get_run(res["run_id"]).data.metrics
    for key in ("test_accuracy", "encoder_test_accuracy", "bag_of_words_test_accuracy",
                "encoder_test_log_loss", "bag_of_words_test_log_loss", "blend/encoder_share"):
        assert key in metrics, key
    assert metrics["test_accuracy"] == pytest.approx(res["test_accuracy"])


def test_registered_blend_loads_by_name_with_the_same_probabilities(blended):
    from sentiment.blend.blended_model import BLEND_DIR, BOW_DIR, BlendedModel, load_predictor
    from sentiment.tracking.model_uri import load_model_uri
    cfg, res, reg = blended
    local = load_predictor(res["run_dir"], device="cpu")
    assert isinstance(local, BlendedModel)
    by_name = load_model_uri(f"models:/{NAME}/{reg['version']}", cfg.tracking_uri)
    np.testing.assert_allclose(by_name.predict_proba(TEXTS), local.predict_proba(TEXTS),
                               rtol=0, atol=1e-6)
    # Both parts travel as plain files: no pickle anywhere in the blend folder.
    files = list((Path(res["run_dir"]) / "model" / BLEND_DIR).rglob("*"))
    assert any(BOW_DIR in str(f) for f in files)
    for f in files:
        if f.is_file():
            assert f.suffix in (".json", ".safetensors"), f
            assert b"pickle" not in f.read_bytes()[:4096]


def test_version_and_decision_show_the_parts(blended):
    from mlflow import MlflowClient

    from sentiment.tracking.promotion import promote
    cfg, _, reg = blended
    tags = MlflowClient(tracking_uri=cfg.tracking_uri).get_model_version(
        NAME, str(reg["version"])).tags
    assert "encoder_test_accuracy" in tags and "bag_of_words_test_accuracy" in tags
    d = promote(cfg, reg["version"])
    assert "candidate's encoder part alone" in d["markdown"]
    assert "candidate's bag-of-words part alone" in d["markdown"]
    assert set(d["compared"]["candidate_parts"]) == {"encoder", "bag_of_words"}
