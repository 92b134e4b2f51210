"""MLflow tracking, registry, promotion and serving on a temporary SQLite store.

Two smoke runs with the random-init tiny encoder are trained once for the module (one through
`sentiment train`), both registered; the tests then look at what the store holds and load the
versions the way another machine would: in fresh processes, by version and by alias, through
`sentiment predict` and over HTTP from `mlflow models serve`.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import logging
import math
import os
import re
import subprocess
import sys
import urllib.request
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from conftest import free_port, stop_process_group, wait_http_ok
from sentiment.config import Config

REPO = Path(__file__).resolve().parents[2]
TEXTS = ["Justice League is terrible. I hated it.", "Avengers was great!!",
         "A slow, muddled plot, but the score is lovely.", "Worst. Film. Ever."]
NAME = "imdb-sentiment-test"
# What the training flow passes to train_tracked to link the MLflow run back to itself.
FLOW_RUN_URL = "http://127.0.0.1:4200/runs/flow-run/0b7c5e1e-8f7e-4c53-9d1a-3f0d1c2b4a5e"
PREFECT_TAGS = {"prefect.flow_run_id": "0b7c5e1e-8f7e-4c53-9d1a-3f0d1c2b4a5e",
                "prefect.flow_run_url": FLOW_RUN_URL,
                "prefect.deployment": "train-sentiment/nightly"}
# MLflow's messages that a first registration and a model load must not print.
MLFLOW_NOISE = ("already exists", "Add type hints")


def _imdb_dir() -> Path | None:
    for c in (os.environ.get("IMDB_DATA"), REPO.parent / "shared" / "data" / "imdb",
              "/work/shared/data/imdb"):
        if c and (Path(c) / "train.parquet").is_file() and (Path(c) / "test.parquet").is_file():
            return Path(c)
    return None


IMDB = _imdb_dir()
pytestmark = pytest.mark.skipif(IMDB is None, reason="IMDB parquet data not found (set IMDB_DATA)")
pytest.importorskip("mlflow")


def _cfg(tmp: Path, run: str, **kw) -> Config:
    # One torch thread: on a small shared CPU, OpenMP threads spinning against MLflow's
    # background threads make a seconds-long smoke run take minutes.
    kw = {"data": str(IMDB), **kw}
    return Config.from_preset("smoke", encoder="random-tiny",
                              run_dir=str(tmp / run), cache_dir=str(tmp / "cache"),
                              tracking_uri=f"sqlite:///{tmp}/mlflow.db", progress=False,
                              model_name=NAME, experiment="imdb-sentiment-test", num_threads=1,
                              **kw)


def _sub_env(uri: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update(MLFLOW_TRACKING_URI=uri, MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="1",
               MLFLOW_ALLOW_PICKLE_DESERIALIZATION="false", OMP_NUM_THREADS="1",
               SENTIMENT_DEVICE="cpu")
    # `mlflow models serve` execs `uvicorn` by name: the venv's bin must be on PATH.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


@contextlib.contextmanager
def _captured_output():
    """Everything MLflow says meanwhile: stderr, warnings and log records, as one text."""
    err, records = io.StringIO(), []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    handler, out = Keep(), {}
    logging.getLogger().addHandler(handler)
    try:
        with contextlib.redirect_stderr(err), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield out
    finally:
        logging.getLogger().removeHandler(handler)
        out["text"] = "\n".join([err.getvalue(), *records,
                                 *(str(w.message) for w in caught)])


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    from mlflow import MlflowClient

    from sentiment.model.predict import SentimentModel
    from sentiment.tracking import promotion, registry, training_run
    from sentiment_cli.main import main as cli_main

    tmp = tmp_path_factory.mktemp("tracking")
    mp = pytest.MonkeyPatch()
    mp.delenv("MLFLOW_TRACKING_URI", raising=False)
    mp.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    mp.setenv("DO_NOT_TRACK", "1")
    # MLflow's monitor drops the sample it is waiting on when the run ends, so a run shorter
    # than one interval records nothing; once the process is warm these runs take about a second.
    mp.setenv("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING", "true")
    mp.setenv("MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL", "0.05")
    mp.setenv("MLFLOW_SYSTEM_METRICS_SAMPLES_BEFORE_LOGGING", "1")
    mp.chdir(tmp)  # anything MLflow wrote relative to the cwd (./mlruns) would show up here
    try:
        report = tmp / "validation-report"
        report.mkdir()
        (report / "summary.json").write_text(json.dumps({"success": True}))

        # The data given relative to the working dir, as `make run` does (../shared/data/imdb).
        cfg1 = _cfg(tmp, "run1", data=os.path.relpath(IMDB, tmp))
        res1 = training_run.train_tracked(cfg1, validation_report_dir=str(report),
                                         tags=PREFECT_TAGS)
        metrics1 = training_run.log_evaluation(res1["run_id"], res1["run_dir"], cfg1)
        with _captured_output() as first_register:
            reg1 = registry.register_model(res1["run_id"], res1["run_dir"], cfg1)

        # The second run goes through the CLI: `sentiment train` is a tracked run.
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            rc = cli_main(["train", "--preset", "smoke", "--data", str(IMDB),
                           "--encoder", "random-tiny", "--run-dir", str(tmp / "run2"),
                           "--cache-dir", str(tmp / "cache"), "--tracking-uri", cfg1.tracking_uri,
                           "--experiment", cfg1.experiment, "--model-name", NAME,
                           "--no-progress", "--seed", "7", "--num-threads", "1"])
        assert rc == 0, out.getvalue()
        run2_id = re.search(r'"run_id": "([0-9a-f]+)"', out.getvalue()).group(1)
        cfg2 = _cfg(tmp, "run2", seed=7)
        reg2 = registry.register_model(run2_id, str(tmp / "run2"), cfg2)
        first_promotion = promotion.promote(cfg1, version=1)

        expected = {}
        for v, run_dir in ((1, tmp / "run1"), (2, tmp / "run2")):
            expected[v] = SentimentModel.load(run_dir, device="cpu").predict_proba(TEXTS)
        client = MlflowClient(cfg1.tracking_uri, cfg1.tracking_uri)
        client.set_registered_model_alias(NAME, "challenger", "2")
        yield SimpleNamespace(tmp=tmp, uri=cfg1.tracking_uri, cfg=cfg1, cfg2=cfg2, res1=res1,
                              metrics1=metrics1, run2_id=run2_id, reg=[reg1, reg2],
                              first_promotion=first_promotion, expected=expected,
                              client=client, cli_out=out.getvalue(),
                              first_register=first_register["text"])
    finally:
        mp.undo()


# ---------------------------------------------------------------------------------------
# Store resolution
# ---------------------------------------------------------------------------------------

def test_tracking_uri_resolution(monkeypatch, tmp_path):
    from sentiment.tracking import store as mlflow_store
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    default = mlflow_store.tracking_uri(Config.from_preset("smoke"))
    assert default == f"sqlite:///{REPO / 'mlflow' / 'mlflow.db'}"
    assert mlflow_store.artifact_root(default) == (REPO / "mlflow" / "artifacts").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    assert mlflow_store.tracking_uri(Config.from_preset("smoke")) == "http://127.0.0.1:5999"
    assert mlflow_store.artifact_root("http://127.0.0.1:5999") is None  # the server decides
    own = f"sqlite:///{tmp_path}/x.db"
    assert mlflow_store.tracking_uri(Config.from_preset("smoke", tracking_uri=own)) == own
    assert mlflow_store.sqlite_path(own) == tmp_path.resolve() / "x.db"
    assert mlflow_store.sqlite_path("http://127.0.0.1:5999") is None


def test_experiment_artifacts_beside_the_database(store):
    exp = store.client.get_experiment_by_name(store.cfg.experiment)
    assert exp.artifact_location.startswith((store.tmp / "artifacts").as_uri())
    run = store.client.get_run(store.res1["run_id"])
    assert run.info.artifact_uri.startswith((store.tmp / "artifacts").as_uri())
    assert not (store.tmp / "mlruns").exists()


# ---------------------------------------------------------------------------------------
# What a training run records
# ---------------------------------------------------------------------------------------

def test_run_params_tags_and_inputs(store):
    run = store.client.get_run(store.res1["run_id"])
    p, tags = run.data.params, run.data.tags
    from sentiment.tracking.training_run import NOT_PARAMS
    shaping = set(store.cfg.to_dict()) - set(NOT_PARAMS)
    assert shaping <= set(p), "every config field that shapes the model is a param"
    assert not set(NOT_PARAMS) & set(p), "where and how it ran is in config.json only"
    assert p["encoder"] == "random-tiny" and p["max_length"] == "64" and p["max_train"] == "48"
    assert p["data.fingerprint"] == store.res1["data_fingerprint"] == tags["data_fingerprint"]
    assert (p["data.train_rows"], p["data.valid_rows"], p["data.test_rows"]) == ("48", "16", "32")
    assert {"data.sha256.train.parquet", "data.sha256.test.parquet"} <= set(p)
    assert tags["encoder.name"] == "random-tiny"
    assert tags["encoder.revision"] == "random-init(seed=0)"
    # Package versions: one tag, not one per package.
    assert not [k for k in tags if k.startswith("pkg.")]
    packages = dict(p.split(" ", 1) for p in tags["packages"].split(", "))
    for pkg in ("torch", "transformers", "mlflow", "numpy", "python"):
        assert packages[pkg], pkg
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True)
    if head.returncode == 0:
        assert tags["mlflow.source.git.commit"] == head.stdout.strip()
        assert tags["git.dirty"] in ("true", "false")
    contexts = {t.value for d in run.inputs.dataset_inputs for t in d.tags
                if t.key == "mlflow.data.context"}
    assert {"train", "validation", "test"} <= contexts


def test_run_metrics(store):
    c, run_id = store.client, store.res1["run_id"]
    m = c.get_run(run_id).data.metrics
    for k in ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss", "ece"):
        assert math.isclose(m[f"test_{k}"], store.metrics1[k], rel_tol=1e-9, abs_tol=1e-12), k
    assert m["test_accuracy"] == store.res1["test_accuracy"]
    # Accuracy per slice of the test set: each length quartile holds reviews.
    for q in range(1, 5):
        assert 0.0 <= m[f"test_slice_length_q{q}_accuracy"] <= 1.0, q
    steps = c.get_metric_history(run_id, "step/train_loss")
    assert [s.step for s in steps] == [1, 2, 3]  # 48 reviews / batch 16, logged every step
    for k in ("train_loss", "train_acc", "val_loss", "val_acc", "epoch_seconds",
              "train_tokens_per_s"):
        hist = c.get_metric_history(run_id, f"epoch/{k}")
        assert [h.step for h in hist] == [1], k  # one epoch
    assert m["epoch/train_tokens_per_s"] > 0 and m["epoch/epoch_seconds"] > 0
    if importlib.util.find_spec("psutil"):
        assert "system/cpu_utilization_percentage" in m, "system metrics were not logged"


def _artifacts(client, run_id, path=None) -> set[str]:
    out = set()
    for a in client.list_artifacts(run_id, path):
        out |= _artifacts(client, run_id, a.path) if a.is_dir else {a.path}
    return out


def test_run_artifacts(store):
    import pandas as pd
    from mlflow.artifacts import download_artifacts
    run_id = store.res1["run_id"]
    arts = _artifacts(store.client, run_id)
    assert {"evaluation/confusion_matrix.png", "evaluation/roc_curve.png",
            "evaluation/precision_recall_curve.png", "evaluation/calibration.png",
            "evaluation/confidently_wrong.csv", "evaluation/example_predictions.json",
            "model_card.md", "validation/summary.json", "data/fingerprint.json",
            "environment.json", "metrics.json", "config.json", "evaluation/calibration.json",
            "evaluation/slices.json"} <= arts
    local = Path(download_artifacts(run_id=run_id, artifact_path="",
                                    tracking_uri=store.uri, dst_path=str(store.tmp / "dl1")))
    for png in local.glob("evaluation/*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
    wrong = pd.read_csv(local / "evaluation/confidently_wrong.csv")
    assert list(wrong.columns) == ["label", "predicted", "prob_positive", "confidence",
                                   "n_chars", "text"]
    assert (wrong["label"] != wrong["predicted"]).all()
    assert wrong["confidence"].is_monotonic_decreasing and (wrong["confidence"] >= 0.5).all()
    ece = json.loads((local / "evaluation/calibration.json").read_text())
    assert math.isclose(ece["ece"], store.metrics1["ece"], abs_tol=1e-12) and ece["n"] == 32
    slices = json.loads((local / "evaluation/slices.json").read_text())
    rows = dict(zip([r[0] for r in slices["data"]], [r[1] for r in slices["data"]]))
    assert sum(rows[f"length_q{i}"] for i in range(1, 5)) == 32  # n per quartile
    assert rows["cut"] + rows["whole"] == 32
    examples = json.loads((local / "evaluation/example_predictions.json").read_text())
    assert [e["text"] for e in examples] == TEXTS[:2]
    np.testing.assert_allclose([e["probability"] for e in examples], store.expected[1][:2],
                               atol=1e-6)
    card = (local / "model_card.md").read_text()
    for section in ("## Data", "## Test metrics", "## Intended use", "## Limits", TEXTS[0]):
        assert section in card
    fp = json.loads((local / "data/fingerprint.json").read_text())
    assert fp["split_sizes"] == {"train": 48, "valid": 16, "test": 32}
    assert all(len(f["sha256"]) == 64 for f in fp["files"].values())


def test_cli_train_is_tracked(store):
    run = store.client.get_run(store.run2_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["seed"] == "7"
    assert "test_accuracy" in run.data.metrics
    assert "model_card.md" in _artifacts(store.client, store.run2_id)


def _logged_model(store, i: int):
    return store.client.get_logged_model(store.reg[i]["logged_model_uri"].split("/")[-1])


def test_run_description_and_prefect_links(store):
    run = store.client.get_run(store.res1["run_id"])
    tags = run.data.tags
    assert {k: tags.get(k) for k in PREFECT_TAGS} == PREFECT_TAGS
    # Source is the flow run's page, not the file that started the process (Prefect's engine).
    assert (tags["mlflow.source.name"], tags["mlflow.source.type"]) == (FLOW_RUN_URL, "JOB")
    assert _logged_model(store, 0).tags["mlflow.source.name"] == FLOW_RUN_URL
    note = tags["mlflow.note.content"]
    assert "\n" not in note
    for part in ("smoke preset", "encoder random-tiny", "max_length 64",
                 "48 train / 16 validation / 32 test reviews", str(IMDB.resolve())):
        assert part in note, (part, note)
    # A run without an orchestrator still says what it is, and claims no flow run.
    cli_tags = store.client.get_run(store.run2_id).data.tags
    assert "48 train / 16 validation / 32 test reviews" in cli_tags["mlflow.note.content"]
    assert not [k for k in cli_tags if k.startswith("prefect.")]
    assert cli_tags["mlflow.source.type"] == "LOCAL"


def test_data_source_is_absolute(store):
    from mlflow.artifacts import download_artifacts
    run = store.client.get_run(store.res1["run_id"])
    want = str(IMDB.resolve())
    assert not Path(store.cfg.data).is_absolute()  # the run was given a relative path
    assert run.data.tags["data.source"] == want
    sources = {json.loads(d.dataset.source)["uri"] for d in run.inputs.dataset_inputs}
    assert sources == {want}
    local = download_artifacts(run_id=run.info.run_id, artifact_path="data/fingerprint.json",
                               tracking_uri=store.uri, dst_path=str(store.tmp / "dl-source"))
    assert json.loads(Path(local).read_text())["source"] == want


def test_system_metrics_stay_on_the_run(store):
    if not importlib.util.find_spec("psutil"):
        pytest.skip("system metrics need psutil")
    run_id = store.res1["run_id"]
    assert "system/cpu_utilization_percentage" in store.client.get_run(run_id).data.metrics
    keys = {m.key for m in _logged_model(store, 0).metrics}
    assert keys and not [k for k in keys if k.startswith("system/")], keys


def test_logged_model_lists_its_datasets(store):
    """The model page's "Datasets used" comes from its metrics' datasets."""
    metrics = _logged_model(store, 0).metrics
    linked = {(m.key, m.dataset_name) for m in metrics}
    assert {("test_accuracy", "imdb-test"), ("test_f1", "imdb-test"),
            ("best_val_loss", "imdb-valid")} <= linked
    digests = {d.dataset.name: d.dataset.digest
               for d in store.client.get_run(store.res1["run_id"]).inputs.dataset_inputs}
    assert all(m.dataset_digest == digests[m.dataset_name] for m in metrics)
    acc = {m.value for m in metrics if m.key == "test_accuracy"}
    assert acc == {store.res1["test_accuracy"]}
    # Linking the model adds no second point to the run's own history.
    assert len(store.client.get_metric_history(store.res1["run_id"], "test_accuracy")) == 1


def test_first_registration_is_quiet(store):
    for noise in MLFLOW_NOISE:
        assert noise not in store.first_register, (noise, store.first_register[-2000:])


# ---------------------------------------------------------------------------------------
# Registry and promotion
# ---------------------------------------------------------------------------------------

def test_two_versions_registered_with_tags(store):
    c = store.client
    versions = sorted(c.search_model_versions(f"name = '{NAME}'"), key=lambda v: int(v.version))
    assert [int(v.version) for v in versions] == [1, 2]
    for v, run_id in zip(versions, [store.res1["run_id"], store.run2_id]):
        acc = c.get_run(run_id).data.metrics["test_accuracy"]
        assert v.run_id == run_id and v.tags["run_id"] == run_id
        assert math.isclose(float(v.tags["test_accuracy"]), acc, abs_tol=1e-6)
        assert v.tags["data_fingerprint"] == store.res1["data_fingerprint"]
        assert v.description and "test accuracy" in v.description
        assert v.current_stage in (None, "None")  # aliases only, never stages
        # Every file of the model folder with its SHA-256, for a rollback to check.
        files = json.loads(v.tags["files_sha256"])
        assert "MLmodel" in files and all(len(h) == 64 for h in files.values())
    assert c.get_registered_model(NAME).description
    assert store.reg[1] == {**store.reg[1], "name": NAME, "version": 2,
                            "model_uri": f"models:/{NAME}/2"}


def test_model_is_code_and_safetensors_only(store):
    from mlflow.artifacts import download_artifacts
    from mlflow.models import Model
    local = Path(download_artifacts(f"models:/{NAME}/1", dst_path=str(store.tmp / "m1"),
                                    tracking_uri=store.uri))
    files = {p.relative_to(local).as_posix() for p in local.rglob("*") if p.is_file()}
    assert not [f for f in files if f.endswith((".pkl", ".pickle", ".bin", ".pt", ".pth"))]
    assert "artifacts/model/head.safetensors" in files
    assert "artifacts/encoder/model.safetensors" in files and "artifacts/encoder/config.json" in files
    assert "code/sentiment/model/predict.py" in files
    mm = Model.load(str(local))
    pyfunc = mm.flavors["python_function"]
    assert pyfunc["loader_module"] == "mlflow.pyfunc.loaders.code_model"
    assert "model_code_path" in pyfunc and "python_model" not in pyfunc
    sig = mm.signature
    assert sig.inputs.input_names() == ["text"]
    assert sig.outputs.input_names() == ["probability", "label"]
    assert mm.load_input_example(str(local)) is not None
    reqs = (local / "requirements.txt").read_text()
    assert "torch==" in reqs and "transformers==" in reqs and "mlflow==" in reqs


def test_promotion_decide():
    from sentiment.gate.decision import decide
    assert decide(0.90, None, 0.85, 0.0)[0] is True
    ok, reason = decide(0.80, None, 0.85, 0.0)
    assert not ok and "below the minimum" in reason
    assert decide(0.90, 0.89, 0.85, 0.0)[0] is True
    assert decide(0.89, 0.89, 0.85, 0.0)[0] is False  # a tie does not beat the champion
    assert decide(0.88, 0.89, 0.85, 0.0)[0] is False
    assert decide(0.90, 0.89, 0.85, 0.01)[0] is True  # exactly the required gain
    assert decide(0.895, 0.89, 0.85, 0.01)[0] is False
    assert decide(0.99, 0.89, 1.0, 0.0)[0] is False   # the floor applies even when better
    assert decide(float("nan"), None, 0.0, 0.0)[0] is False


def test_promote_gate(store):
    from sentiment.gate.decision import decide
    from sentiment.tracking import promotion
    c = store.client
    first = store.first_promotion
    assert first["promoted"] and first["champion_before"] is None
    assert first["candidate"]["version"] == 1 and first["champion_after"]["version"] == 1
    assert "| candidate | 1 |" in first["markdown"]
    v1 = c.get_model_version(NAME, "1")
    assert v1.tags["promotion_decision"] == "promoted"
    assert v1.tags["promotion_compared_to"] == "none" and v1.tags["promotion_reason"]

    acc1, acc2 = (float(c.get_model_version(NAME, v).tags["test_accuracy"]) for v in "12")
    strict = promotion.promote(store.cfg.replace(min_accuracy=1.0))  # newest = version 2
    assert not strict["promoted"] and strict["candidate"]["version"] == 2
    assert "below the minimum" in strict["reason"]
    assert int(c.get_model_version_by_alias(NAME, "champion").version) == 1
    assert c.get_model_version(NAME, "2").tags["promotion_decision"] == "rejected"
    assert c.get_model_version(NAME, "2").tags["promotion_compared_to"] == "1"

    res = promotion.promote(store.cfg, version=2)
    want, _ = decide(acc2, acc1, 0.0, 0.0)
    assert res["promoted"] is want
    assert res["champion_before"] == {"version": 1, "accuracy": acc1}
    holder = int(c.get_model_version_by_alias(NAME, "champion").version)
    assert holder == (2 if want else 1)
    again = promotion.promote(store.cfg, version=holder)
    assert not again["promoted"] and "already holds" in again["reason"]
    with pytest.raises(ValueError, match="no version 42"):
        promotion.promote(store.cfg, version=42)


# ---------------------------------------------------------------------------------------
# Using a registered model by name, elsewhere
# ---------------------------------------------------------------------------------------

_LOADER = r"""
import json, sys
import mlflow, pandas as pd
uris, texts = json.loads(sys.argv[1]), json.loads(sys.argv[2])
out = {}
for uri in uris:
    df = mlflow.pyfunc.load_model(uri).predict(pd.DataFrame({"text": texts}))
    out[uri] = {"probability": df["probability"].tolist(), "label": df["label"].tolist()}
import sentiment
out["sentiment_file"] = sentiment.__file__
print("RESULT " + json.dumps(out))
"""


def _champion_version(store) -> int:
    return int(store.client.get_model_version_by_alias(NAME, "champion").version)


def test_load_by_version_and_alias_in_fresh_process(store):
    champ = _champion_version(store)
    uris = {f"models:/{NAME}/1": 1, f"models:/{NAME}/2": 2, f"models:/{NAME}@champion": champ,
            f"models:/{NAME}@challenger": 2}
    proc = subprocess.run([sys.executable, "-c", _LOADER, json.dumps(list(uris)),
                           json.dumps(TEXTS)], cwd=store.tmp, env=_sub_env(store.uri),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not [n for n in MLFLOW_NOISE if n in proc.stderr], proc.stderr[-3000:]
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT "))
    out = json.loads(line[len("RESULT "):])
    for uri, version in uris.items():
        probs = np.array(out[uri]["probability"])
        np.testing.assert_allclose(probs, store.expected[version], atol=1e-6, err_msg=uri)
        assert out[uri]["label"] == ["pos" if p >= 0.5 else "neg" for p in probs]
    # The code came from the model, not from this checkout.
    assert not Path(out["sentiment_file"]).resolve().is_relative_to(REPO), out["sentiment_file"]


def test_cli_predict_by_alias(store):
    champ = _champion_version(store)
    proc = subprocess.run([sys.executable, "-m", "sentiment_cli.main", "predict", "--model",
                           f"models:/{NAME}@champion", *TEXTS], cwd=store.tmp,
                          env=_sub_env(store.uri), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [ln.split("\t") for ln in proc.stdout.strip().splitlines()]
    assert [r[2] for r in rows] == TEXTS
    np.testing.assert_allclose([float(r[0]) for r in rows], store.expected[champ], atol=1e-4)


def test_load_model_uri_in_process(store):
    from sentiment.tracking.model_uri import load_model_uri
    model = load_model_uri(f"models:/{NAME}/2", store.uri)
    np.testing.assert_allclose(model.predict_proba(TEXTS), store.expected[2], atol=1e-6)
    assert model.predict_proba([]).shape == (0,)


@pytest.mark.parametrize("uri, message", [
    ("models:/no-such-model@champion", "unknown registered model 'no-such-model'"),
    (f"models:/{NAME}@no-such-alias", f"'{NAME}' has no alias 'no-such-alias'"),
    (f"models:/{NAME}/99", f"'{NAME}' has no version 99"),
    ("models:/", "malformed model URI"),
    (f"models:/{NAME}@", "malformed model URI"),
    (f"models:/{NAME}@a@b", "malformed model URI"),
    (f"models:/{NAME}/Production", "not a version number"),
    (f"models:/{NAME}", "names no version or alias"),
    ("runs:/", "malformed run URI"),
    ("imdb-sentiment@champion", "not an MLflow model URI"),
    ("", "empty model URI"),
])
def test_load_model_uri_errors(store, uri, message):
    from sentiment.tracking.model_uri import load_model_uri
    with pytest.raises(ValueError, match=re.escape(message)):
        load_model_uri(uri, store.uri)


@pytest.mark.slow
def test_served_model_answers_http(store):
    champ = _champion_version(store)
    port = free_port()
    log_path = store.tmp / "serve.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "models", "serve", "-m", f"models:/{NAME}@champion",
             "--env-manager", "local", "-p", str(port), "-h", "127.0.0.1", "-w", "1"],
            cwd=store.tmp, env=_sub_env(store.uri), stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_http_ok(f"{base}/ping", proc, 300, lambda: log_path.read_text()[-3000:], interval=1)
        body = json.dumps({"dataframe_records": [{"text": t} for t in TEXTS]}).encode()
        req = urllib.request.Request(f"{base}/invocations", data=body,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=120) as r:
            assert r.status == 200
            preds = json.loads(r.read())["predictions"]
        probs = [p["probability"] for p in preds]
        np.testing.assert_allclose(probs, store.expected[champ], atol=1e-6)
        assert [p["label"] for p in preds] == ["pos" if p >= 0.5 else "neg" for p in probs]
    finally:
        stop_process_group(proc)
