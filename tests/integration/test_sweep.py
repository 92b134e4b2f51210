"""The head sweep: a tiny Optuna sweep through the Prefect flow `sweep-heads`, each trial a
nested MLflow run under one parent run holding the comparison table and plot; the best trial
registered, gated and loaded by name like any candidate."""

from __future__ import annotations

import json

import pandas as pd
import pytest

pytestmark = pytest.mark.slow

prefect = pytest.importorskip("prefect")
pytest.importorskip("mlflow")
optuna = pytest.importorskip("optuna")

from sentiment.config import Config  # noqa: E402


def test_tiny_sweep_nests_its_trials_under_one_parent_with_the_table(harness, imdb_dir,
                                                                      tmp_path, monkeypatch):
    import mlflow

    from flows.sweep import sweep_sentiment
    from sentiment.tracking import sweep_run
    from sentiment.tracking.names import CHAMPION
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv(sweep_run.STORAGE_ENV, raising=False)
    monkeypatch.setenv("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING", "false")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    s = sweep_sentiment(preset="smoke", data=str(imdb_dir), run_dir=str(tmp_path / "runs"),
                        cache_dir=str(tmp_path / "cache"), encoder="random-tiny",
                        sweep_trials=3, sweep_heads="gru,cnn,linear_attention",
                        tracking_uri=uri, model_name="sweep-test",
                        overrides={"progress": False, "num_threads": 1, "max_length": 48},
                        promote=True)
    client = mlflow.MlflowClient(uri, uri)
    parent = client.get_run(s["parent_run_id"])
    children = client.search_runs([parent.info.experiment_id],
                                  f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert len(children) == 3 and len(s["rows"]) == 3
    assert {c.data.tags[sweep_run.ROLE] for c in children} == {sweep_run.TRIAL}
    assert all(c.info.experiment_id == parent.info.experiment_id for c in children)
    for c in children:  # each trial logged as a training run is
        assert 0 <= c.data.metrics["test_accuracy"] <= 1 and c.data.metrics["parameters"] > 0
        assert c.data.params["head"] in ("gru", "cnn", "linear_attention")
        assert c.data.metrics["train_tokens_per_s"] > 0
    # The parent holds the comparison table (one row per child) and the plot.
    table = json.loads(mlflow.artifacts.download_artifacts(
        run_id=parent.info.run_id, artifact_path=sweep_run.TABLE_ARTIFACT,
        tracking_uri=uri, dst_path=str(tmp_path / "dl")))
    rows = [dict(zip(table["columns"], r)) for r in table["data"]]
    assert sorted(r["run_id"] for r in rows) == sorted(c.info.run_id for c in children)
    assert {"val_accuracy", "test_accuracy", "train_seconds", "train_tokens_per_s",
            "inference_reviews_per_s", "parameters"} <= set(table["columns"])
    names = {a.path for a in client.list_artifacts(parent.info.run_id, "sweep")}
    assert {sweep_run.PLOT_ARTIFACT, sweep_run.TABLE_MARKDOWN} <= names
    best = max(rows, key=lambda r: r["val_accuracy"])
    assert parent.data.tags[sweep_run.BEST_RUN_TAG] == best["run_id"]
    # The study is in the tracking database's engine: optuna.db beside the SQLite store.
    study = optuna.load_study(study_name=s["study"], storage=f"sqlite:///{tmp_path / 'optuna.db'}")
    assert len(study.trials) == 3
    assert {t.user_attrs["run_id"] for t in study.trials} == {r["run_id"] for r in rows}
    # The best trial became a version, went through the gate, and loads by name.
    version = client.get_model_version("sweep-test", str(s["version"]))
    assert version.run_id == best["run_id"]
    assert isinstance(s["decision"], bool)
    target = (f"models:/sweep-test@{CHAMPION}" if s["decision"]
              else f"models:/sweep-test/{s['version']}")
    out = mlflow.pyfunc.load_model(target).predict(
        pd.DataFrame({"text": ["A wonderful film.", "Dull and bad."]}))
    assert list(out.columns) == ["probability", "label"] and out["probability"].between(0, 1).all()


def test_sweep_settings_are_checked_in_one_line():
    with pytest.raises(ValueError, match="sweep_heads='gru,rnn'"):
        Config(sweep_heads="gru,rnn")
    with pytest.raises(ValueError, match="sweep_minutes must be > 0"):
        Config(sweep_minutes=0)
    from sentiment.tracking.sweep_run import study_storage
    with pytest.raises(ValueError, match="is not a SQLite file: give the study a database"):
        study_storage(Config(), "http://127.0.0.1:5080")
    assert study_storage(Config(), "sqlite:////x/mlflow.db") == "sqlite:////x/optuna.db"
