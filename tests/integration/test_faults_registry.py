"""The registry under faults: racing promoters, a registration retried after a failure, an
unreachable or silent tracking server, a pickled model version, bad requests to the served
model, and the promotion gate comparing like with like (baseline, champion from another test
set).

Two smoke runs with the random-init tiny encoder are trained once for the module, on test
splits of different sizes (so of different test sets); everything else is cheap registry work.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import free_port, stop_process_group, wait_http_ok
from sentiment.config import Config

REPO = Path(__file__).resolve().parents[2]
NAME = "imdb-sentiment-faults"
pytest.importorskip("mlflow")


def _imdb() -> Path | None:
    for c in (os.environ.get("IMDB_DATA"), REPO.parent / "shared" / "data" / "imdb",
              "/work/shared/data/imdb"):
        if c and (Path(c) / "train.parquet").is_file() and (Path(c) / "test.parquet").is_file():
            return Path(c)
    return None


IMDB = _imdb()
needs_data = pytest.mark.skipif(IMDB is None, reason="IMDB parquet data not found (set IMDB_DATA)")


def _cfg(tmp: Path, run: str, **kw) -> Config:
    kw = {"data": str(IMDB), **kw}
    return Config.from_preset("smoke", encoder="random-tiny",
                              run_dir=str(tmp / run), cache_dir=str(tmp / "cache"),
                              tracking_uri=f"sqlite:///{tmp}/mlflow.db", progress=False,
                              model_name=NAME, experiment="faults", num_threads=1, **kw)


def _env(uri: str | None = None, **extra) -> dict:
    """A subprocess environment with no MLflow settings of the developer's: the project's own
    defaults (timeouts, pickle off) are what is tested."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "PREFECT_API"))}
    env.update(MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="1", OMP_NUM_THREADS="1",
               SENTIMENT_DEVICE="cpu", PYTHONPATH=str(REPO))
    if uri:
        env["MLFLOW_TRACKING_URI"] = uri
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.update(extra)
    return env


def _test_set(cfg: Config) -> str:
    """A fingerprint of the test split's texts and labels, as tracked runs tag it."""
    from sentiment.data.imdb import load_splits
    test = load_splits(cfg).test
    h = hashlib.sha256()
    for text, label in zip(test["text"], test["label"]):
        h.update(text.encode())
        h.update(b"\0%d\0" % int(label))
    return h.hexdigest()[:16]


def _leaning_data(folder: Path) -> Path:
    """A small IMDB folder whose 32 test reviews are 3/4 positive: a barely trained model
    scores differently on it than on a balanced test split, so a re-scored accuracy shows."""
    import pandas as pd
    folder.mkdir(parents=True)
    train = pd.read_parquet(IMDB / "train.parquet", columns=["text", "label"])
    test = pd.read_parquet(IMDB / "test.parquet", columns=["text", "label"])
    pick = lambda df, pos, neg: pd.concat([df[df.label == 1].sample(pos, random_state=0),  # noqa: E731
                                           df[df.label == 0].sample(neg, random_state=0)])
    pick(train, 60, 60).sample(frac=1.0, random_state=0).to_parquet(folder / "train.parquet",
                                                                     index=False)
    pick(test, 24, 8).sample(frac=1.0, random_state=0).to_parquet(folder / "test.parquet",
                                                                   index=False)
    return folder


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    if IMDB is None:
        pytest.skip("IMDB parquet data not found (set IMDB_DATA)")
    from mlflow import MlflowClient

    from sentiment.tracking import training_run
    tmp = tmp_path_factory.mktemp("faults")
    mp = pytest.MonkeyPatch()
    for k in ("MLFLOW_TRACKING_URI", "MLFLOW_ALLOW_PICKLE_DESERIALIZATION"):
        mp.delenv(k, raising=False)
    mp.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    mp.setenv("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING", "false")
    mp.chdir(tmp)
    try:
        cfg_a = _cfg(tmp, "run-a", data=str(_leaning_data(tmp / "data-a")))
        cfg_b = _cfg(tmp, "run-b", max_test=24, seed=7)  # balanced, from the full test split
        client = MlflowClient(cfg_a.tracking_uri, cfg_a.tracking_uri)
        runs = {}
        for key, cfg in (("a", cfg_a), ("b", cfg_b)):
            res = training_run.train_tracked(cfg)
            if "data.test_set" not in client.get_run(res["run_id"]).data.tags:
                client.set_tag(res["run_id"], "data.test_set", _test_set(cfg))
            runs[key] = SimpleNamespace(cfg=cfg, run_id=res["run_id"], run_dir=res["run_dir"],
                                        test_set=client.get_run(res["run_id"]).data.tags[
                                            "data.test_set"])
        assert runs["a"].test_set != runs["b"].test_set
        yield SimpleNamespace(tmp=tmp, uri=cfg_a.tracking_uri, client=client, **runs)
    finally:
        mp.undo()


def _register(run) -> int:
    from sentiment.tracking import registry
    return registry.register_model(run.run_id, run.run_dir, run.cfg)["version"]


def _versions_of(client, name: str, run_id: str) -> list:
    return [v for v in client.search_model_versions(f"name = '{name}'") if v.run_id == run_id]


# ---------------------------------------------------------------------------------------
# Registration
# ---------------------------------------------------------------------------------------

def test_registration_retried_after_a_failure_leaves_one_version(store, monkeypatch):
    from sentiment.tracking import registry
    real, calls = registry._finish_version, []

    def fail_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise ConnectionError("injected: the tracking server went away")
        return real(*args, **kwargs)

    monkeypatch.setattr(registry, "_finish_version", fail_once)
    a = store.a
    with pytest.raises(ConnectionError, match="injected"):
        registry.register_model(a.run_id, a.run_dir, a.cfg)
    assert len(_versions_of(store.client, NAME, a.run_id)) == 1  # created, then the failure
    again = registry.register_model(a.run_id, a.run_dir, a.cfg)  # the task's retry
    versions = _versions_of(store.client, NAME, a.run_id)
    assert len(versions) == 1 and int(versions[0].version) == again["version"]
    mv = store.client.get_model_version(NAME, str(again["version"]))
    run = store.client.get_run(a.run_id)
    assert float(mv.tags["test_accuracy"]) == run.data.metrics["test_accuracy"]
    assert mv.tags["test_set"] == a.test_set and mv.tags["run_id"] == a.run_id
    assert mv.description and "test accuracy" in mv.description
    from sentiment.tracking.names import MODEL_NAME_IN_RUN
    logged = store.client.search_logged_models(
        experiment_ids=[run.info.experiment_id],
        filter_string=f"source_run_id = '{a.run_id}' AND name = '{MODEL_NAME_IN_RUN}'")
    assert len(logged) == 1  # the retry reused the logged model too
    # A third call (e.g. the flow run retried as a whole) still finds it.
    assert registry.register_model(a.run_id, a.run_dir, a.cfg)["version"] == again["version"]


def test_registration_refuses_another_runs_folder(store):
    from sentiment.tracking import registry
    a, b = store.a, store.b
    # The folder's mlflow_run.json names run a: registering run b from it is refused.
    with pytest.raises(ValueError, match=f"holds MLflow run {a.run_id}, not run {b.run_id}"):
        registry.register_model(b.run_id, a.run_dir, b.cfg)


# ---------------------------------------------------------------------------------------
# The gate: like with like
# ---------------------------------------------------------------------------------------

def _clear_champion(client, name=NAME):
    from mlflow.exceptions import MlflowException
    try:
        client.delete_registered_model_alias(name, "champion")
    except MlflowException:
        pass


def test_candidate_below_the_baseline_is_refused(store):
    from sentiment.tracking import promotion
    va = _register(store.a)
    _clear_champion(store.client)
    acc = float(store.client.get_model_version(NAME, str(va)).tags["test_accuracy"])
    # The gate as the presets that mean it have it (smoke's is open): strictly above the baseline.
    cfg = store.a.cfg.replace(min_accuracy=0.0, min_lift_over_baseline=0.0)
    baseline = {"accuracy": min(1.0, acc + 0.05), "test_set": store.a.test_set,
                "run_id": "baseline-run", "version": None}
    d = promotion.promote(cfg, version=va, baseline=baseline)
    assert not d["promoted"]
    assert "does not beat the bag-of-words baseline" in d["reason"], d["reason"]
    assert d["compared"]["lift_over_baseline"] == pytest.approx(acc - baseline["accuracy"])
    assert "| baseline |" in d["markdown"] and "(lift)" in d["markdown"]
    tags = store.client.get_model_version(NAME, str(va)).tags
    n = d["audit_record"]
    assert tags[f"promotion.{n}.decision"] == "rejected"
    assert float(tags[f"promotion.{n}.baseline_accuracy"]) == baseline["accuracy"]
    # Beaten by the required lift: promoted.
    ok = promotion.promote(cfg, version=va,
                          baseline={**baseline, "accuracy": acc - 0.05})
    assert ok["promoted"], ok["reason"]
    # A baseline from another test set is no comparison at all.
    other = promotion.promote(cfg, version=va,
                             baseline={**baseline, "test_set": store.b.test_set})
    assert not other["promoted"] and "no like-for-like comparison" in other["reason"]
    _clear_champion(store.client)


def test_champion_from_another_test_set_is_rescored(store):
    from sentiment.data.imdb import load_splits
    from sentiment.evaluation.metrics import classification_metrics
    from sentiment.model.predict import SentimentModel
    from sentiment.tracking import promotion
    va, vb = _register(store.a), _register(store.b)
    _clear_champion(store.client)
    cfg = store.a.cfg.replace(min_accuracy=0.0)
    assert promotion.promote(cfg, version=vb)["promoted"]  # b: champion, tested on its own set
    d = promotion.promote(cfg, version=va)
    test = load_splits(store.a.cfg).test
    probs = SentimentModel.load(store.b.run_dir, device="cpu").predict_proba(test["text"].tolist())
    expected = classification_metrics(test["label"].to_numpy(), probs)["accuracy"]
    champ = d["compared"]["champion"]
    assert champ["version"] == vb and champ["rescored"] is True
    assert champ["accuracy"] == pytest.approx(expected, abs=1e-9)
    own = float(store.client.get_model_version(NAME, str(vb)).tags["test_accuracy"])
    if own != expected:  # the usual case: the registry's number is not the one compared
        assert champ["accuracy"] != own and d["champion_before"]["accuracy"] == own
    assert d["compared"]["test_set"] == store.a.test_set
    assert d["compared"]["gain_over_champion"] == pytest.approx(
        d["candidate"]["accuracy"] - expected)
    assert "re-scored on this test set" in d["markdown"]
    tags = store.client.get_model_version(NAME, str(va)).tags
    assert tags[f"promotion.{d['audit_record']}.champion_rescored"] == "true"
    assert float(tags[f"promotion.{d['audit_record']}.champion_accuracy"]) == pytest.approx(expected)
    _clear_champion(store.client)


def test_champion_that_cannot_be_rescored_refuses_the_comparison(store, monkeypatch):
    from sentiment.data import imdb
    from sentiment.tracking import promotion
    va, vb = _register(store.a), _register(store.b)
    _clear_champion(store.client)
    cfg = store.a.cfg.replace(min_accuracy=0.0)
    assert promotion.promote(cfg, version=vb)["promoted"]

    def gone(_cfg):
        raise FileNotFoundError("/data/imdb: no such folder")

    monkeypatch.setattr(imdb, "load_splits", gone)
    d = promotion.promote(cfg, version=va)
    assert not d["promoted"]
    assert "cannot compare with the champion (version" in d["reason"]
    assert "no such folder" in d["reason"]
    assert int(store.client.get_model_version_by_alias(NAME, "champion").version) == vb
    _clear_champion(store.client)


# ---------------------------------------------------------------------------------------
# Two promoters at once
# ---------------------------------------------------------------------------------------

_PROMOTER = r"""
import json, sys
from sentiment.tracking import promotion
from sentiment.config import Config
cfg = Config.from_dict(json.loads(sys.argv[1]))
version = int(sys.argv[2])
print("ready", flush=True)
for line in sys.stdin:
    if line.strip() != "go":
        break
    d = promotion.promote(cfg, version=version)
    print(json.dumps({"promoted": d["promoted"], "reason": d["reason"],
                      "record": d["audit_record"]}), flush=True)
"""


def test_two_promoters_at_once_end_with_the_better_champion(store):
    """10 trials: two processes promote two versions of different accuracy at the same
    moment, starting with no champion; the better one ends as champion every time and both
    decisions are on record."""
    from sentiment.tracking import registry
    name = NAME + "-race"
    client = store.client
    source = client.get_model_version(NAME, str(_register(store.a))).source
    exp = client.get_experiment_by_name("faults").experiment_id
    versions = {}
    for acc in (0.70, 0.80):
        run = client.create_run(exp)
        client.log_metric(run.info.run_id, "test_accuracy", acc)
        client.set_terminated(run.info.run_id)
        registry.ensure_registered_model(client, name)
        mv = client.create_model_version(name, source, run_id=run.info.run_id, tags={
            "test_accuracy": repr(acc), "test_set": "0" * 16, "run_id": run.info.run_id})
        versions[acc] = int(mv.version)
    worse, better = versions[0.70], versions[0.80]
    cfg = store.a.cfg.replace(model_name=name, min_accuracy=0.0)
    procs = [subprocess.Popen([sys.executable, "-c", _PROMOTER, json.dumps(cfg.to_dict()),
                               str(v)], cwd=store.tmp, env=_env(), stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for v in (worse, better)]
    try:
        for p in procs:
            assert p.stdout.readline().strip() == "ready", p.stderr.read()[-2000:]
        for trial in range(1, 11):
            _clear_champion(client, name)
            for p in procs:  # both start within a millisecond of each other
                p.stdin.write("go\n")
                p.stdin.flush()
            results = [json.loads(p.stdout.readline()) for p in procs]
            champion = int(client.get_model_version_by_alias(name, "champion").version)
            assert champion == better, (trial, results)
            assert results[1]["promoted"], results  # the better one always ends promoted
            for v, r in zip((worse, better), results):
                tags = client.get_model_version(name, str(v)).tags
                assert r["record"] == trial and tags["promotion_count"] == str(trial)
                assert tags[f"promotion.{trial}.decision"] in ("promoted", "rejected")
                assert tags[f"promotion.{trial}.reason"] == r["reason"]
    finally:
        for p in procs:
            p.stdin.close()
            p.wait(timeout=60)


# ---------------------------------------------------------------------------------------
# Registry outage: fail in seconds, before any work
# ---------------------------------------------------------------------------------------

class _SilentServer:
    """Accepts connections and never answers."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.held, self.stop = [], False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        self.sock.settimeout(0.2)
        while not self.stop:
            try:
                self.held.append(self.sock.accept()[0])
            except OSError:
                pass

    def close(self):
        self.stop = True
        self.thread.join()
        for c in self.held:
            c.close()
        self.sock.close()


def _one_line(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, stderr[-3000:]
    return lines[0]


@needs_data
@pytest.mark.parametrize("server", ["closed", "silent"])
def test_unreachable_tracking_server_fails_fast_before_any_work(server, tmp_path):
    silent = _SilentServer() if server == "silent" else None
    port = silent.port if silent else free_port()
    uri = f"http://127.0.0.1:{port}"
    run_dir, cache = tmp_path / "run", tmp_path / "cache"
    try:
        t = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-m", "sentiment_cli.main", "pipeline", "--preset", "smoke",
             "--data", str(IMDB), "--encoder", "random-tiny", "--run-dir", str(run_dir),
             "--cache-dir", str(cache), "--tracking-uri", uri, "--no-progress"],
            cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=120)
        seconds = time.monotonic() - t
    finally:
        if silent:
            silent.close()
    assert proc.returncode != 0 and seconds < 30, (seconds, proc.stderr[-2000:])
    line = _one_line(proc.stderr)
    assert uri in line and ("connection refused" if server == "closed" else "timed out") in line
    assert not cache.exists() or not any(cache.rglob("*"))  # nothing tokenized
    assert not (run_dir / "validation").exists()             # not even validated


@needs_data
def test_predict_says_server_unreachable_not_unknown_model(tmp_path):
    silent = _SilentServer()
    uri = f"http://127.0.0.1:{silent.port}"
    try:
        t = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "sentiment_cli.main", "predict", "--model",
                               "models:/imdb-sentiment@champion", "What a film!"],
                              cwd=tmp_path, env=_env(uri), capture_output=True, text=True,
                              timeout=120)
        seconds = time.monotonic() - t
    finally:
        silent.close()
    assert proc.returncode != 0 and seconds < 30, (seconds, proc.stderr[-2000:])
    line = _one_line(proc.stderr)
    assert f"tracking server unreachable at {uri}" in line and "unknown" not in line


def test_probe_names_the_cause(tmp_path):
    import http.server

    from sentiment.tracking.store import StoreUnavailable, probe

    class NotMlflow(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = b"<html>hello</html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = http.server.HTTPServer(("127.0.0.1", 0), NotMlflow)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        with pytest.raises(StoreUnavailable, match="is not an MLflow server"):
            probe(f"http://127.0.0.1:{httpd.server_address[1]}", 5)
    finally:
        httpd.shutdown()
        httpd.server_close()
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(StoreUnavailable, match="is not a folder"):
        probe(f"sqlite:///{blocker}/store/mlflow.db", 5)
    probe(f"sqlite:///{tmp_path}/new/mlflow.db", 5)  # a folder to be created is fine


# ---------------------------------------------------------------------------------------
# Untrusted models: no pickle
# ---------------------------------------------------------------------------------------

def _log_pickled_version(uri: str, marker: Path) -> str:
    """A python_function model saved with cloudpickle whose unpickling creates `marker`."""
    import pathlib

    import mlflow

    class Trap(mlflow.pyfunc.PythonModel):
        def __reduce__(self):
            return (pathlib.Path.touch, (pathlib.Path(str(marker)),))

        def predict(self, context, model_input):
            return model_input

    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    # An explicit experiment id: set_experiment would leave a process-wide active experiment
    # behind, and later tests' start_run(run_id=...) of other experiments would refuse it.
    exp_id = mlflow.MlflowClient(uri).create_experiment("faults-untrusted")
    with mlflow.start_run(experiment_id=exp_id):
        info = mlflow.pyfunc.log_model(name="model", python_model=Trap(),
                                       registered_model_name="untrusted")
    assert not marker.exists()
    return f"models:/untrusted/{info.registered_model_version}"


@needs_data
def test_pickled_version_is_refused(store, tmp_path, monkeypatch):
    from sentiment.tracking.model_uri import UnsafeModel, load_model_uri
    marker = tmp_path / "code-ran"
    uri = _log_pickled_version(store.uri, marker)
    proc = subprocess.run([sys.executable, "-m", "sentiment_cli.main", "predict", "--model", uri,
                           "What a film!"], cwd=tmp_path, env=_env(store.uri),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    line = _one_line(proc.stderr)
    assert f"refusing to load {uri} (version" in line, line
    assert "MLFLOW_ALLOW_PICKLE_DESERIALIZATION" in line and "cloudpickle" in line
    assert not marker.exists()
    monkeypatch.delenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", raising=False)
    with pytest.raises(UnsafeModel, match="refusing to load"):
        load_model_uri(uri, store.uri)
    assert not marker.exists()
    # MLflow's own loader refuses it too once the project's default is in place.
    import mlflow
    from mlflow.exceptions import MlflowException
    assert os.environ["MLFLOW_ALLOW_PICKLE_DESERIALIZATION"] == "false"
    with pytest.raises(MlflowException, match="pickle"):
        mlflow.pyfunc.load_model(uri)
    assert not marker.exists()


# ---------------------------------------------------------------------------------------
# The served model: 400s with one line
# ---------------------------------------------------------------------------------------

@pytest.mark.slow
def test_served_model_rejects_bad_input_in_one_line(store):
    version = _register(store.b)
    port = free_port()
    log_path = store.tmp / "serve.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            ["bash", str(REPO / "mlflow" / "serve.sh"), f"models:/{NAME}/{version}", "-p",
             str(port), "-w", "1"],
            cwd=store.tmp, env=_env(store.uri), stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_http_ok(f"{base}/ping", proc, 300, lambda: log_path.read_text()[-3000:], interval=1)

        def post(payload):
            req = urllib.request.Request(f"{base}/invocations", data=json.dumps(payload).encode(),
                                         headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=120) as r:
                    return r.status, r.read().decode()
            except urllib.error.HTTPError as e:
                return e.code, e.read().decode()

        status, body = post({"dataframe_records": [{"text": "What a wonderful film!"}]})
        assert status == 200 and json.loads(body)["predictions"][0]["label"] in ("pos", "neg")
        cases = {
            "bare numbers": ({"inputs": [1, 2]}, "must be a string"),
            "empty string": ({"inputs": ""}, "needs a column 'text'"),
            "empty text": ({"dataframe_records": [{"text": ""}]}, "must not be empty"),
            "number in text": ({"dataframe_records": [{"text": 5}]}, "must be a string"),
            "missing column": ({"dataframe_records": [{"review": "good"}]},
                               "needs a column 'text'"),
        }
        for case, (payload, reason) in cases.items():
            status, body = post(payload)
            assert status == 400, (case, status, body[:500])
            err = json.loads(body)
            assert "\n" not in err["message"] and reason in err["message"], (case, err)
            assert "Traceback" not in body and "stack_trace" not in err, (case, body[:500])
    finally:
        stop_process_group(proc)
