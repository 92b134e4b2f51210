"""Batch scoring, the library and `sentiment score`'s checks: inputs read in order with every row
(parquet, CSV, JSON lines, a folder of them), unscorable rows kept with an error, ids carried
over, scores equal to SentimentModel's own, the model loaded once per process and its version
pinned, the output written atomically and never over an existing file, one-line errors before
Prefect or torch, and an unreachable tracking server failing in seconds.

One smoke model (random-init tiny encoder) is trained and registered once per test session
(`scoring_store` in tests/conftest.py, shared with test_score_flow.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import SCORING_MODEL as NAME
from conftest import free_port, reviews

REPO = Path(__file__).resolve().parents[2]
pytest.importorskip("mlflow")


# ------------------------------------------------------------------------------------------
# Inputs: order, every row, ids; one-line errors
# ------------------------------------------------------------------------------------------

TEXTS = ["good film", "", "bad film", "   ", None, "fine", "NA"]


def _write(df: pd.DataFrame, path: Path) -> Path:
    if path.suffix == ".parquet":
        df.to_parquet(path, index=False)
    elif path.suffix == ".csv":
        df.to_csv(path, index=False)
    else:
        df.to_json(path, orient="records", lines=True)
    return path


@pytest.mark.parametrize("fmt", [".parquet", ".csv", ".jsonl"])
def test_each_format_keeps_order_every_row_and_ids(tmp_path, fmt):
    from sentiment.scoring.inputs import check_inputs, read_inputs
    df = pd.DataFrame({"review_id": [17, 3, 99, 5, 42, 8, 1], "text": TEXTS})
    path = _write(df, tmp_path / f"in{fmt}")
    got = read_inputs(check_inputs(path, "text", "review_id"))
    assert list(got["review_id"]) == [17, 3, 99, 5, 42, 8, 1]
    assert got["text"].tolist()[:4] == ["good film", "", "bad film", "   "]
    # CSV writes a null as an empty field: it comes back as an empty text, still a row.
    from sentiment.scoring.batch import text_error
    assert text_error(got["text"].iloc[4]) == ("empty text" if fmt == ".csv" else "null text")
    assert got["text"].iloc[6] == "NA"  # a review that reads "NA" is a review, not a null
    rows = read_inputs(check_inputs(path, "text"))
    assert list(rows.columns) == ["row", "text"] and list(rows["row"]) == list(range(7))


def test_folder_is_read_in_file_name_order(tmp_path):
    from sentiment.scoring.inputs import check_inputs, read_inputs
    folder = tmp_path / "in"
    folder.mkdir()
    _write(pd.DataFrame({"id": ["c1", "c2"], "text": ["x", "y"]}), folder / "c.jsonl")
    _write(pd.DataFrame({"id": ["a1", "a2", "a3"], "text": ["p", "", "q"]}), folder / "a.parquet")
    _write(pd.DataFrame({"id": ["b1"], "text": ["z"]}), folder / "b.csv")
    (folder / ".a.parquet.pid1.host.x.tmp").write_text("a writer's temp file")
    got = read_inputs(check_inputs(folder, "text", "id"))
    assert list(got["id"]) == ["a1", "a2", "a3", "b1", "c1", "c2"]
    assert list(read_inputs(check_inputs(folder, "text"))["row"]) == list(range(6))


def test_bad_inputs_and_outputs_fail_in_one_line(tmp_path):
    from sentiment.scoring.batch import output_target
    from sentiment.scoring.inputs import ScoringInputError, check_inputs
    good = _write(pd.DataFrame({"text": ["a"]}), tmp_path / "good.parquet")
    (tmp_path / "notes.txt").write_text("x")
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    _write(pd.DataFrame({"text": ["a"]}), mixed / "a.csv")
    (mixed / "readme.md").write_text("x")
    (tmp_path / "empty").mkdir()
    cases = [(lambda: check_inputs(tmp_path / "missing.parquet", "text"), "no such file"),
             (lambda: check_inputs(tmp_path / "notes.txt", "text"), "unknown format '.txt'"),
             (lambda: check_inputs(good, "body"), "no text column 'body'"),
             (lambda: check_inputs(good, "text", "id"), "no id column 'id'"),
             (lambda: check_inputs(mixed, "text"), "unknown format: readme.md"),
             (lambda: check_inputs(tmp_path / "empty", "text"), "holds no"),
             (lambda: output_target(str(good)), "exists"),
             (lambda: output_target(str(tmp_path / "notes.txt")), "is a file, not a folder"),
             (lambda: output_target(str(tmp_path / "notes.txt" / "s.parquet")),
              f"{tmp_path / 'notes.txt'} is not a folder")]
    for call, expected in cases:
        with pytest.raises(ScoringInputError) as e:
            call()
        assert expected in str(e.value) and "\n" not in str(e.value)
    assert output_target(str(good), overwrite=True) == good.absolute()


def test_folder_output_gets_a_new_file_per_run(tmp_path):
    from sentiment.scoring.batch import output_target
    a, b = output_target(str(tmp_path / "scores")), output_target(str(tmp_path / "scores"))
    assert a != b and a.parent == b.parent == (tmp_path / "scores").absolute()
    assert a.name.startswith("scores-") and a.suffix == ".parquet"


def test_cli_errors_come_before_prefect_and_torch(tmp_path):
    """Each mistake: exit 2, one line on stderr, and neither Prefect nor torch imported."""
    good = _write(pd.DataFrame({"text": ["a"]}), tmp_path / "in.csv")
    existing = _write(pd.DataFrame({"text": ["a"]}), tmp_path / "old.parquet")
    cases = [["--input", str(tmp_path / "nope.csv"), "--output", str(tmp_path / "o.parquet")],
             ["--input", str(good), "--output", str(tmp_path / "o"), "--text-column", "body"],
             ["--input", str(good), "--output", str(existing)],
             ["--input", str(good), "--output", str(tmp_path / "o"), "--workers", "0"],
             ["--input", str(good), "--output", str(tmp_path / "o"), "--scheduler", "nowhere"]]
    script = (
        "import json, sys, contextlib, io\n"
        "from sentiment_cli.main import main\n"
        "out = []\n"
        "for argv in json.loads(sys.argv[1]):\n"
        "    err = io.StringIO()\n"
        "    with contextlib.redirect_stderr(err):\n"
        "        rc = main(['score', *argv])\n"
        "    out.append([rc, err.getvalue()])\n"
        "out.append(sorted(m for m in ('prefect', 'torch', 'distributed') if m in sys.modules))\n"
        "print(json.dumps(out))\n")
    proc = subprocess.run([sys.executable, "-c", script, json.dumps(cases)], cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    *results, imported = json.loads(proc.stdout.strip().splitlines()[-1])
    expected = ["no such file", "no text column 'body'", "exists", "workers must be >= 1",
                "not a Dask scheduler address"]
    for (rc, err), want in zip(results, expected):
        assert rc == 2 and want in err and len(err.strip().splitlines()) == 1, err
    assert imported == []


def test_cli_unreachable_tracking_server_fails_in_seconds(tmp_path):
    good = _write(pd.DataFrame({"text": ["a"]}), tmp_path / "in.jsonl")
    uri = f"http://127.0.0.1:{free_port()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "PREFECT_API"))}
    t = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "sentiment_cli.main", "score", "--input",
                           str(good), "--output", str(tmp_path / "out"), "--tracking-uri", uri],
                          cwd=tmp_path, env={**env, "PYTHONPATH": str(REPO)},
                          capture_output=True, text=True, timeout=120)
    seconds = time.monotonic() - t
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2 and seconds < 30, (seconds, proc.stderr[-2000:])
    assert len(lines) == 1 and f"tracking server unreachable at {uri}" in lines[0]
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------------------
# Scoring with the registered model
# ------------------------------------------------------------------------------------------

def test_shards_keep_every_row_and_match_sentiment_model(scoring_store):
    from sentiment.model.predict import SentimentModel
    from sentiment.scoring import batch
    batch.forget_models()
    job = batch.resolve_model(scoring_store.model, scoring_store.uri)
    assert job["model_uri"] == f"models:/{NAME}/{scoring_store.version}"
    assert job["model_version"] == scoring_store.version
    texts = reviews(9, seed=3)
    texts[2], texts[5], texts[8] = "", "  \n", None  # three rows it cannot score
    keys = pd.DataFrame({"id": [f"r{i}" for i in range(9)]})
    shards = [batch.score_shard(texts[a:b], job["model_uri"], scoring_store.uri)
              for a, b in batch.shard_bounds(len(texts), 4)]
    assert [s["model_loads"] for s in shards] == [1, 1, 1]  # loaded once in this process
    table = batch.assemble(keys, shards, job["model_version"], threshold=0.5)
    assert list(table.columns) == ["id", "probability", "label", "model_version", "error"]
    assert list(table["id"]) == list(keys["id"])
    bad = table["error"].notna()
    assert list(bad[bad].index) == [2, 5, 8]
    assert table.loc[bad, "probability"].isna().all() and table.loc[bad, "label"].isna().all()
    assert list(table.loc[bad, "error"]) == ["empty text", "blank text (whitespace only)",
                                             "null text"]
    direct = SentimentModel.load(scoring_store.run_dir, device="cpu")
    good = [t for t in texts if isinstance(t, str) and t.strip()]
    np.testing.assert_allclose(table.loc[~bad, "probability"].to_numpy(dtype=float),
                               direct.predict_proba(good), atol=1e-5)
    assert set(table.loc[~bad, "label"]) <= {"pos", "neg"}
    assert (table["model_version"] == scoring_store.version).all()


def test_alias_is_pinned_to_its_version(scoring_store):
    """A job scores with the version the alias named when it started, whatever the alias
    says later."""
    from mlflow import MlflowClient

    from sentiment.scoring import batch
    client = MlflowClient(scoring_store.uri, scoring_store.uri)
    first = batch.resolve_model(scoring_store.model, scoring_store.uri)
    src = client.get_model_version(NAME, str(scoring_store.version))
    newer = client.create_model_version(NAME, src.source, run_id=src.run_id)
    try:
        client.set_registered_model_alias(NAME, "champion", newer.version)
        assert first["model_uri"] == f"models:/{NAME}/{scoring_store.version}"
        moved = batch.resolve_model(scoring_store.model, scoring_store.uri)
        assert moved["model_version"] == int(newer.version)
    finally:
        client.set_registered_model_alias(NAME, "champion", str(scoring_store.version))
        client.delete_model_version(NAME, newer.version)


def test_write_is_atomic_and_never_replaces_a_file(tmp_path, monkeypatch):
    from sentiment.scoring.batch import write_scores
    from sentiment.scoring.inputs import ScoringInputError
    table = pd.DataFrame({"row": [0, 1], "probability": [0.2, 0.9]})
    target = tmp_path / "scores.parquet"

    def broken(self, path, **kw):  # half a file, then the disk fills
        Path(path).write_bytes(b"PAR1 partial")
        raise OSError(28, "No space left on device")
    with monkeypatch.context() as m:
        m.setattr(pd.DataFrame, "to_parquet", broken)
        with pytest.raises(OSError, match="No space"):
            write_scores(table, target)
    assert list(tmp_path.iterdir()) == []  # no partial output, no temp file left

    write_scores(table, target)
    pd.testing.assert_frame_equal(pd.read_parquet(target), table)
    with pytest.raises(ScoringInputError, match="appeared while scoring"):
        write_scores(table.assign(probability=[0.0, 0.0]), target)  # another run's file
    pd.testing.assert_frame_equal(pd.read_parquet(target), table)
    write_scores(table.assign(probability=[0.5, 0.5]), target, overwrite=True)
    assert list(pd.read_parquet(target)["probability"]) == [0.5, 0.5]
    assert [p.name for p in tmp_path.iterdir()] == ["scores.parquet"]


def test_scoring_run_in_mlflow(scoring_store):
    from mlflow import MlflowClient

    from sentiment.scoring import batch
    from sentiment.scoring.config import ScoringConfig
    from sentiment.tracking import scoring_run
    cfg = ScoringConfig(input="in.parquet", output="out", tracking_uri=scoring_store.uri,
                        experiment="scoring-run-test")
    probs = [0.1, 0.6, 0.95, None]
    dist = batch.distribution(probs)
    summary = {"rows": 4, "errors": 1, "input": "in.parquet", "output": "/x/out.parquet",
               "model_requested": scoring_store.model, "model_uri": f"models:/{NAME}/1",
               "model_name": NAME, "model_version": 1, "seconds": 2.0, "rows_per_s": 2.0,
               "workers": 2, "shards": 1, "error_counts": {"empty text": 1}}
    run = scoring_run.log_scoring_run(cfg, summary, dist, tags={"prefect.flow_run_id": "abc"})
    got = MlflowClient(scoring_store.uri).get_run(run["run_id"])
    assert got.info.status == "FINISHED"
    assert got.data.params["model_version"] == "1"
    assert got.data.params["model_requested"] == scoring_store.model
    m = got.data.metrics
    assert (m["rows"], m["errors"], m["scored_rows"], m["rows_per_s"]) == (4, 1, 3, 2.0)
    assert m["score_p50"] == pytest.approx(0.6) and m["score_positive_share"] == pytest.approx(2 / 3)
    assert got.data.tags["model_version"] == "1" and got.data.tags["prefect.flow_run_id"] == "abc"
    hist = MlflowClient(scoring_store.uri).download_artifacts(
        run["run_id"], scoring_run.DISTRIBUTION_ARTIFACT)
    assert sum(json.loads(Path(hist).read_text())["histogram"]["counts"]) == 3
