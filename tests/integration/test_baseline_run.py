"""The baseline's tracked run on a temporary SQLite store: its MLflow run, its registered
version loaded by name in a fresh process with pickle off, and its test-set tag matching the
training run's for the same Config.

One smoke training run (random-init tiny encoder) and two baseline runs (the training run's
Config, and the same with a smaller test subset) are made once for the module.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from sentiment.config import Config

pytestmark = pytest.mark.slow
pytest.importorskip("mlflow")
pytest.importorskip("sklearn")

REPO = Path(__file__).resolve().parents[2]
NAME = "imdb-sentiment-baseline-test"
TEXTS = ["Justice League is terrible. I hated it.", "Avengers was great!!",
         "A slow, muddled plot, but the score is lovely.", "Worst. Film. Ever."]
RESULT_KEYS = {"run_id", "accuracy", "test_set", "version", "model_uri", "seconds", "metrics",
               "kind", "train_rows"}


@pytest.fixture(scope="module")
def runs(imdb_dir, tmp_path_factory):
    from sentiment.tracking import baseline_run, training_run
    tmp = tmp_path_factory.mktemp("baseline-run")
    mp = pytest.MonkeyPatch()
    mp.delenv("MLFLOW_TRACKING_URI", raising=False)
    mp.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    mp.setenv("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING", "false")
    mp.chdir(tmp)
    try:
        # 600 training reviews: the baseline learns words in a second or two; 200 test reviews.
        cfg = Config.from_preset("smoke", data=str(imdb_dir), encoder="random-tiny",
                                 max_train=600, baseline_max_train=600, max_test=200,
                                 run_dir=str(tmp / "run"),
                                 cache_dir=str(tmp / "cache"), progress=False, num_threads=1,
                                 tracking_uri=f"sqlite:///{tmp}/mlflow.db",
                                 experiment="imdb-sentiment-test", baseline_model_name=NAME)
        train = training_run.train_tracked(cfg)
        base = baseline_run.train_baseline(cfg, tags={"prefect.flow_run_id": "flow-1"})
        other = baseline_run.train_baseline(cfg.replace(max_test=100))
        import mlflow
        client = mlflow.MlflowClient(tracking_uri=cfg.tracking_uri, registry_uri=cfg.tracking_uri)
        yield SimpleNamespace(tmp=tmp, cfg=cfg, train=train, base=base, other=other,
                              client=client)
    finally:
        mp.undo()


def test_returns_what_the_gate_takes(runs):
    assert set(runs.base) == RESULT_KEYS
    assert runs.base["version"] == 1 and runs.other["version"] == 2
    assert runs.base["model_uri"] == f"models:/{NAME}/1"
    assert 0.0 <= runs.base["accuracy"] <= 1.0 and runs.base["seconds"] > 0
    assert re.fullmatch(r"[0-9a-f]{16}", runs.base["test_set"])
    assert runs.base["metrics"]["accuracy"] == runs.base["accuracy"]


def test_baseline_run_is_tracked_with_its_metrics(runs):
    run = runs.client.get_run(runs.base["run_id"])
    train_run = runs.client.get_run(runs.train["run_id"])
    assert run.info.status == "FINISHED"
    assert run.info.experiment_id == train_run.info.experiment_id  # cfg.experiment
    assert re.fullmatch(r"smoke-baseline-\d{8}-\d{6}", run.info.run_name), run.info.run_name
    tags = run.data.tags
    assert tags["role"] == "baseline" and tags["data.test_set"] == runs.base["test_set"]
    assert tags["prefect.flow_run_id"] == "flow-1"  # the caller's tags are kept
    assert "role" not in train_run.data.tags
    m = run.data.metrics
    assert m["test_accuracy"] == pytest.approx(runs.base["accuracy"])
    for key in ("test_f1", "test_roc_auc", "test_log_loss", "test_precision", "test_recall"):
        assert key in m and np.isfinite(m[key]), key
    assert m["time/fit_s"] > 0
    p = run.data.params
    cfg = runs.cfg
    assert float(p["baseline_c"]) == cfg.baseline_c
    assert int(p["baseline_ngram_max"]) == cfg.baseline_ngram_max
    assert int(p["baseline_min_df"]) == cfg.baseline_min_df
    assert int(p["baseline_max_features"]) == cfg.baseline_max_features
    assert p["baseline_max_train"] == "600" and p["max_test"] == "200" and p["data"] == cfg.data
    assert p["data.train_rows"] == "600" and p["data.test_rows"] == "200"


def test_baseline_run_reads_like_the_training_run(runs):
    """Its splits as datasets, the same report files and a card of its own, the packages it
    uses and a logged model named apart from the training run's."""
    run = runs.client.get_run(runs.base["run_id"])
    contexts = {t.value for d in run.inputs.dataset_inputs for t in d.tags
                if t.key == "mlflow.data.context"}
    assert {"train", "validation", "test"} <= contexts
    names = {a.path for a in runs.client.list_artifacts(run.info.run_id)}
    report = {a.path for a in runs.client.list_artifacts(run.info.run_id, "evaluation")}
    assert "model_card.md" in names
    assert {"evaluation/roc_curve.png", "evaluation/confusion_matrix.png",
            "evaluation/confidently_wrong.csv"} <= report
    card = Path(runs.client.download_artifacts(run.info.run_id, "model_card.md",
                                               str(runs.tmp))).read_text()
    assert f"{runs.base['accuracy']:.4f}" in card and "GRU" not in card
    packages = dict(p.split(" ", 1) for p in run.data.tags["packages"].split(", "))
    assert "scikit-learn" in packages and not {"torch", "transformers"} & set(packages)
    assert not [k for k in run.data.tags if k.startswith(("pkg.", "encoder."))]
    models = runs.client.search_logged_models(experiment_ids=[run.info.experiment_id])
    by_run = {m.source_run_id: m.name for m in models}
    assert by_run[run.info.run_id] == "baseline-model"


def test_version_tags_name_accuracy_test_set_and_run(runs):
    v = runs.client.get_model_version(NAME, "1")
    assert v.run_id == runs.base["run_id"]
    assert float(v.tags["test_accuracy"]) == pytest.approx(runs.base["accuracy"], abs=1e-6)
    assert v.tags["test_set"] == runs.base["test_set"]
    assert v.tags["run_id"] == runs.base["run_id"]
    assert runs.client.get_model_version(NAME, "2").tags["test_set"] == runs.other["test_set"]


def test_test_set_tag_matches_the_training_run_and_follows_max_test(runs):
    train_tag = runs.client.get_run(runs.train["run_id"]).data.tags["data.test_set"]
    assert runs.base["test_set"] == train_tag
    assert runs.other["test_set"] != train_tag
    other_run = runs.client.get_run(runs.other["run_id"])
    assert other_run.data.tags["data.test_set"] == runs.other["test_set"]
    assert other_run.data.params["data.test_rows"] == "100"


def test_model_is_plain_files_and_code(runs):
    from mlflow.artifacts import download_artifacts
    from mlflow.models import Model
    local = Path(download_artifacts(f"models:/{NAME}/1", dst_path=str(runs.tmp / "m1"),
                                    tracking_uri=runs.cfg.tracking_uri))
    files = {p.relative_to(local).as_posix() for p in local.rglob("*") if p.is_file()}
    assert not [f for f in files if f.endswith((".pkl", ".pickle", ".joblib", ".bin", ".pt"))]
    assert {"artifacts/baseline/vocabulary.json", "artifacts/baseline/weights.safetensors",
            "artifacts/baseline/baseline_config.json", "code/sentiment/baseline/tfidf.py"} <= files
    pyfunc = Model.load(str(local)).flavors["python_function"]
    assert pyfunc["loader_module"] == "mlflow.pyfunc.loaders.code_model"
    reqs = (local / "requirements.txt").read_text()
    assert "scikit-learn==" in reqs and "torch" not in reqs


_LOADER = r"""
import json, sys
import mlflow, pandas as pd
uri, texts = sys.argv[1], json.loads(sys.argv[2])
df = mlflow.pyfunc.load_model(uri).predict(pd.DataFrame({"text": texts}))
import sentiment
print("RESULT " + json.dumps({"probability": df["probability"].tolist(),
                              "label": df["label"].tolist(), "sentiment": sentiment.__file__,
                              "torch": "torch" in sys.modules}))
"""


def test_loads_by_name_in_fresh_process_without_pickle(runs):
    from sentiment.baseline import kinds
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update(MLFLOW_TRACKING_URI=runs.cfg.tracking_uri, MLFLOW_DISABLE_TELEMETRY="true",
               MLFLOW_ALLOW_PICKLE_DESERIALIZATION="false", DO_NOT_TRACK="1")
    proc = subprocess.run([sys.executable, "-c", _LOADER, f"models:/{NAME}/1", json.dumps(TEXTS)],
                          cwd=runs.tmp, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT "))
    out = json.loads(line[len("RESULT "):])
    # The library model: the same Config fitted here, outside MLflow.
    library = kinds.train_and_test(runs.cfg, kinds.baseline_splits(runs.cfg))["model"]
    expected = library.predict_proba(TEXTS)
    np.testing.assert_allclose(out["probability"], expected, atol=1e-6)
    assert out["label"] == ["pos" if p >= 0.5 else "neg" for p in expected]
    # The code came from the model, and a bag of words needs no torch.
    assert not Path(out["sentiment"]).resolve().is_relative_to(REPO), out["sentiment"]
    assert out["torch"] is False
