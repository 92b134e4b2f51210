"""The `score-reviews` flow on Dask under `prefect_test_harness`: `sentiment score` with one
local worker into one file and the flow with two into a folder (one output per input file)
give the same scores, in input order, every row kept (three empty texts with an error), ids
carried over; each worker process loads the model once; the MLflow run and the Prefect
artifacts say what was scored with which version, and how the reviews compare with the
model's training profile; a second run over the same folder finds nothing new and completes.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.slow

pytest.importorskip("prefect")
pytest.importorskip("prefect_dask")
pytest.importorskip("mlflow")

from conftest import SCORING_MODEL as NAME  # noqa: E402
from conftest import reviews  # noqa: E402


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A folder of three files (parquet, CSV, JSON lines) with ids and three empty texts."""
    folder = tmp_path_factory.mktemp("incoming")
    texts = reviews(30, seed=5)
    texts[4], texts[13], texts[27] = "", "   ", ""
    ids = [f"review-{i:03d}" for i in range(30)]
    df = pd.DataFrame({"id": ids, "text": texts})
    df.iloc[:12].to_parquet(folder / "a.parquet", index=False)
    df.iloc[12:20].to_csv(folder / "b.csv", index=False)
    df.iloc[20:].to_json(folder / "c.jsonl", orient="records", lines=True)
    return folder, df


def _artifacts(flow_run_id) -> dict:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
    with get_client(sync_client=True) as client:
        arts = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))
    return {a.key: a for a in arts}


def test_dask_scoring_one_and_two_workers(harness, scoring_store, inputs, tmp_path,
                                          monkeypatch):
    from mlflow import MlflowClient

    from flows.score import DRIFT_KEY, SCORES_KEY, score_reviews
    from sentiment.model.predict import SentimentModel
    from sentiment_cli.main import main
    folder, df = inputs
    monkeypatch.chdir(tmp_path)

    # One worker, through the command line (the flow in-process, as `sentiment score` runs it).
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = main(["score", "--input", str(folder), "--output", str(tmp_path / "one.parquet"),
                   "--model", scoring_store.model, "--tracking-uri", scoring_store.uri,
                   "--id-column", "id", "--workers", "1", "--shard-rows", "15"])
    assert rc == 0
    printed = out.getvalue()
    assert "Rows: 30 (3 not scorable" in printed and "rows/s" in printed
    assert f"models:/{NAME}/{scoring_store.version}" in printed
    assert str(tmp_path / "one.parquet") in printed

    # Two workers, the flow itself, into a folder: one output per input file, in the day's
    # partition, each recorded in the manifest.
    state = score_reviews(input=str(folder), output=str(tmp_path / "scores"),
                          model=scoring_store.model, tracking_uri=scoring_store.uri,
                          id_column="id", workers=2, shard_rows=5, return_state=True)
    assert state.is_completed(), state.message
    s = state.result()
    assert s["output"] == str(tmp_path / "scores") and len(s["files"]) == 3
    assert all(Path(f["output"]).parent.name.startswith("date=") for f in s["files"])
    assert s["rows"] == 30 and s["errors"] == 3 and s["shards"] == 7  # 12 + 8 + 10 rows
    assert s["model_uri"] == f"models:/{NAME}/{scoring_store.version}"
    assert s["model_version"] == scoring_store.version and s["rows_per_s"] > 0
    # Two worker processes, each loaded the model once for its several shards.
    assert len(s["model_loads"]) == 2 and set(s["model_loads"].values()) == {1}
    # The registered model carries its training profile: the reviews were compared with it.
    assert s["drift"]["input"]["checked"] and s["drift_line"].startswith("Drift: ")

    one = pd.read_parquet(tmp_path / "one.parquet")
    two = pd.concat([pd.read_parquet(tmp_path / "scores" / f["output"]) for f in s["files"]],
                    ignore_index=True)
    assert list(two.columns) == ["id", "probability", "label", "model_version", "error"]
    assert list(two["id"]) == list(df["id"])                  # input order, every row
    pd.testing.assert_frame_equal(one.drop(columns="probability"),
                                  two.drop(columns="probability"))
    np.testing.assert_allclose(one["probability"].to_numpy(dtype=float, na_value=np.nan),
                               two["probability"].to_numpy(dtype=float, na_value=np.nan),
                               atol=1e-5)
    empty = two["error"].notna()
    assert list(two.index[empty]) == [4, 13, 27] and two.loc[empty, "probability"].isna().all()
    direct = SentimentModel.load(scoring_store.run_dir, device="cpu")
    np.testing.assert_allclose(two.loc[~empty, "probability"].to_numpy(dtype=float),
                               direct.predict_proba(df.loc[~empty, "text"].tolist()), atol=1e-5)

    # The MLflow run and the Prefect artifact of the two-worker run.
    run = MlflowClient(scoring_store.uri).get_run(s["mlflow_run_id"])
    assert run.data.params["model_version"] == str(scoring_store.version)
    assert run.data.params["model_requested"] == scoring_store.model
    assert run.data.params["workers"] == "2" and run.data.params["output"] == s["output"]
    assert run.data.metrics["rows"] == 30 and run.data.metrics["errors"] == 3
    assert {"rows_per_s", "score_mean", "score_p50", "score_positive_share",
            "drift_tokens_psi", "drift_oov_share_p", "drift_features"} <= set(run.data.metrics)
    assert run.data.tags["drift"] and {"drift_report.json", "drift_report.md",
                                       "scored_files.json"} <= {
        a.path for a in MlflowClient(scoring_store.uri).list_artifacts(s["mlflow_run_id"])}
    assert run.data.tags["prefect.flow_run_id"] == str(state.state_details.flow_run_id)
    art = _artifacts(state.state_details.flow_run_id)[SCORES_KEY]
    for fact in ("| rows | 30 |", "| errors | 3 |", f"| model version | {scoring_store.version} |",
                 s["output"], "Score histogram", "empty text", "**Files**"):
        assert fact in art.data, (fact, art.data)
    drift = _artifacts(state.state_details.flow_run_id)[DRIFT_KEY]
    assert "length in tokens" in drift.data and "PSI" in drift.data
    assert json.dumps(s)  # the summary is plain JSON for the deployment's result

    # The next day, nothing new: completed at once (no cluster, no MLflow run), and it says so.
    again = score_reviews(input=str(folder), output=str(tmp_path / "scores"),
                          model=scoring_store.model, tracking_uri=scoring_store.uri,
                          id_column="id", workers=2, return_state=True)
    assert again.is_completed(), again.message
    quiet = again.result()
    assert quiet["nothing_new"] and quiet["rows"] == 0 and len(quiet["skipped"]) == 3
    assert "Nothing new" in _artifacts(again.state_details.flow_run_id)[SCORES_KEY].data
    assert len(list((tmp_path / "scores").glob("date=*/*.parquet"))) == 3


def test_bad_input_fails_the_flow_in_one_line_before_any_cluster(harness, tmp_path):
    from flows.score import score_reviews
    from sentiment.scoring.inputs import ScoringInputError
    (tmp_path / "in.csv").write_text("body\nhello\n")
    state = score_reviews(input=str(tmp_path / "in.csv"), output=str(tmp_path / "out"),
                          tracking_uri=f"sqlite:///{tmp_path}/mlflow.db", on_bad_file="stop",
                          return_state=True)
    assert state.is_failed() and "no text column 'text'" in state.message
    with pytest.raises(ScoringInputError):
        state.result()
    assert not (tmp_path / "out").exists() and not (tmp_path / "mlflow.db").exists()


def test_daily_deployment_and_its_parameter_form():
    """prefect.yaml's score-reviews/daily: the flow, a daily cron, the process pool, folder
    parameters; and each flow parameter typed and described in the deployment's form."""
    import yaml
    from prefect.utilities.callables import parameter_schema_from_entrypoint
    repo = Path(__file__).resolve().parents[2]
    spec = yaml.safe_load((repo / "prefect.yaml").read_text())
    daily = next(d for d in spec["deployments"] if d["name"] == "daily")
    assert daily["entrypoint"] == "flows/score.py:score_reviews"
    assert daily["work_pool"]["name"] == "sentiment-process"
    minute, hour, dom, month, dow = daily["schedules"][0]["cron"].split()
    assert (dom, month, dow) == ("*", "*", "*") and minute.isdigit() and hour.isdigit()
    assert daily["parameters"] == {"input": "incoming", "output": "scores"}
    schema = parameter_schema_from_entrypoint(
        str(repo / daily["entrypoint"])).model_dump_for_openapi()
    props = schema["properties"]
    assert {"input", "output", "model", "workers", "scheduler", "tracking_uri"} <= set(props)
    for name, p in props.items():
        assert p.get("description"), f"{name} has no description"
        assert "type" in p or "anyOf" in p, f"{name} has no type"
    assert set(schema["required"]) == {"input", "output"}
