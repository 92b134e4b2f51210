"""Faults during a run: damaged caches, checkpoints and model folders are never used.

A damaged entry (bytes overwritten with the size unchanged, a truncated file) is reported in
one line naming the file, removed and built again, and the model trained from the rebuilt
cache is the one a clean run trains; a damaged checkpoint or model file is refused by name.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from sentiment.config import Config


def _cfg(tmp: Path, imdb_dir, **kw) -> Config:
    base = dict(data=str(imdb_dir), run_dir=str(tmp / "run"), cache_dir=str(tmp / "cache"),
                encoder="random-tiny", progress=False, track=False, num_threads=1)
    return Config.from_preset("smoke", **{**base, **kw})


def _quiet(_msg: str) -> None:
    pass


def _heads(run_dir: Path) -> dict:
    from safetensors.torch import load_file
    return load_file(str(run_dir / "model" / "head.safetensors"))


def _zero_half(path: Path) -> None:
    """Overwrite the second half of a file with zeros, its size unchanged."""
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.seek(size // 2)
        f.write(b"\0" * (size - size // 2))


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory, imdb_dir):
    """A smoke training from a cold cache: the reference the rebuilt caches must reproduce."""
    from sentiment.training.loop import TrainHooks, train
    tmp = tmp_path_factory.mktemp("clean")
    cfg = _cfg(tmp, imdb_dir)
    summary = train(cfg, hooks=TrainHooks(report=_quiet))
    return cfg, summary


def test_damaged_caches_are_reported_removed_and_rebuilt(clean_run, caplog):
    """States half zeroed (size unchanged) and the training token cache cut in half: both are
    named in one warning each and rebuilt, and the model equals the clean run's."""
    from sentiment.training.loop import TrainHooks, train
    cfg, summary = clean_run
    states = Path(summary["run_dir"]).parent / "cache" / "states" / \
        summary["state_cache"]["train"]["key"] / "states.npy"
    (tokens,) = (Path(cfg.cache_dir) / "tokens").glob("tokens-train-*.arrow")
    _zero_half(states)
    tokens.write_bytes(tokens.read_bytes()[: tokens.stat().st_size // 2])

    again = Path(cfg.run_dir).with_name("again")
    with caplog.at_level(logging.WARNING):
        second = train(cfg.replace(run_dir=str(again)), hooks=TrainHooks(report=_quiet))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    said_states = [w for w in warnings if str(states) in w]
    said_tokens = [w for w in warnings if str(tokens) in w]
    assert len(said_states) == 1 and "checksum" in said_states[0], warnings
    assert "built again" in said_states[0] and "\n" not in said_states[0]
    assert len(said_tokens) == 1 and "bytes" in said_tokens[0], warnings
    assert "tokenized again" in said_tokens[0] and "\n" not in said_tokens[0]
    assert "rebuilt" in second["state_cache"]["train"]
    assert not second["state_cache"]["valid"].get("rebuilt")  # only the damaged entry
    a, b = _heads(Path(cfg.run_dir)), _heads(again)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert second["test"]["accuracy"] == summary["test"]["accuracy"]
    # What was rebuilt is served as a hit now.
    third = train(cfg.replace(run_dir=str(again.with_name("third"))),
                  hooks=TrainHooks(report=_quiet))
    assert all(v["hit"] for v in third["state_cache"].values())


def test_with_rebuilding_off_a_damaged_cache_stops_the_run_before_training(clean_run, tmp_path):
    from sentiment.common.checksums import Damaged
    from sentiment.training import loop
    from sentiment.training.loop import TrainHooks, train
    cfg, summary = clean_run
    entry = Path(cfg.cache_dir) / "states" / summary["state_cache"]["valid"]["key"]
    offsets = entry / "offsets.npy"
    offsets.write_bytes(offsets.read_bytes()[:-8])

    def no_training(*a, **k):
        raise AssertionError("training started on a damaged cache")
    real_fit, loop.fit = loop.fit, no_training
    try:
        with pytest.raises(Damaged, match=r"^encoder-state cache: .*offsets\.npy has \d+ bytes, "
                                          r"\d+ were written; remove it or allow rebuilding$"):
            train(cfg.replace(run_dir=str(tmp_path / "off"), rebuild_damaged_caches=False),
                  hooks=TrainHooks(report=_quiet))
    finally:
        loop.fit = real_fit
    assert offsets.exists()  # kept, as asked: the user decides


def test_damaged_checkpoint_and_model_files_are_refused_by_name(clean_run, tmp_path):
    import shutil

    from sentiment.common.checksums import Damaged
    from sentiment.model import model_folder
    from sentiment.training import checkpoints
    cfg, _ = clean_run
    run = tmp_path / "copy"
    shutil.copytree(cfg.run_dir, run, ignore=shutil.ignore_patterns(".run.lock"))
    model_folder.load(run)  # intact: loads

    # A checkpoint whose tensor bytes were overwritten, size and header unchanged.
    last = run / checkpoints.CHECKPOINT
    checkpoints.verify(last)
    data = bytearray(last.read_bytes())
    header = 8 + int.from_bytes(data[:8], "little")
    data[header:header + 64] = bytes(64)
    last.write_bytes(bytes(data))
    with pytest.raises(Damaged, match=r"last\.safetensors does not match its checksum"):
        checkpoints.verify(last)

    # A model folder file changed after training: named, whichever file it is.
    for name in ("head.safetensors", "preprocessing.json"):
        target = run / "model" / name
        original = target.read_bytes()
        target.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
        with pytest.raises(Damaged, match=rf"model/{name.replace('.', '[.]')} does not match"):
            model_folder.load(run)
        target.write_bytes(original)
    model_folder.load(run)


def test_checksum_check_costs_little_next_to_reading_the_file(tmp_path):
    """The check at load reads each file once (no second pass for the shapes)."""
    from sentiment.common import checksums
    path = tmp_path / "blob"
    path.write_bytes(np.random.default_rng(0).bytes(1 << 20))
    rec = checksums.record(path)
    checksums.check(path, rec)
    with open(path, "r+b") as f:
        f.seek(1000)
        f.write(b"\0")
    with pytest.raises(checksums.Damaged, match="does not match its sha256 checksum"):
        checksums.check(path, rec)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(checksums.Damaged, match="has 100 bytes, 1048576 were written"):
        checksums.check(path, rec)


# --- checks before work ----------------------------------------------------------------------

@pytest.fixture
def no_flow(monkeypatch):
    """The pipeline's flow replaced by one that fails the test: nothing may start."""
    import sys
    import types
    stub = types.ModuleType("flows.train")

    def train_sentiment(**_):
        raise AssertionError("the flow started (validation would run next)")
    stub.train_sentiment = train_sentiment
    monkeypatch.setitem(sys.modules, "flows.train", stub)


@pytest.mark.parametrize("case", ["small-disk", "resume-without-checkpoint"])
def test_the_pipeline_stops_before_validation_in_seconds(case, tmp_path, imdb_dir, monkeypatch,
                                                        capsys, no_flow):
    import time

    from sentiment.training import run_folder
    from sentiment_cli.main import main
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    args = ["pipeline", "--data", str(imdb_dir), "--cache-dir", str(tmp_path / "cache"),
            "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}", "--no-progress"]
    if case == "small-disk":  # the quick preset on a disk with 16 MB free
        monkeypatch.setattr(run_folder.shutil, "disk_usage",
                            lambda p: type("U", (), {"free": 16_000_000})())
        args += ["--preset", "quick"]
        needle = (r"^sentiment pipeline: error: not enough free disk space for this run: needs "
                  r"token and encoder-state caches in .*checkpoints and model in runs/quick "
                  r"~\d+ MB, model store in .* but 16 MB free on .*--run-dir$")
    else:
        args += ["--preset", "smoke", "--run-dir", str(tmp_path / "run"), "--resume"]
        needle = rf"^sentiment pipeline: error: --resume: no checkpoint at {tmp_path}/run/"
    t = time.perf_counter()
    code = main(args)
    seconds = time.perf_counter() - t
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    import re
    assert re.search(needle, err), err
    assert seconds < 10
    assert not (tmp_path / "run").exists() and not (tmp_path / "runs").exists()


# --- the tracking server goes away mid-training ----------------------------------------------

def test_a_server_gone_mid_training_stops_at_a_checkpoint_and_resume_sends_every_point_once(
        tmp_path, imdb_dir, monkeypatch):
    """The server stops taking points during epoch 1 (and answers no probe): training stops
    after epoch 1's checkpoint with one line naming the server, the run is KILLED; once the
    server is back, --resume re-sends what it never received and every step and epoch point
    is in the run exactly once."""
    pytest.importorskip("mlflow")
    import json

    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from sentiment.tracking import metric_log, training_run
    from sentiment.tracking.store import StoreUnavailable, connect
    monkeypatch.setenv("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING", "false")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    cfg = _cfg(tmp_path, imdb_dir, epochs=3, track=True, tracking_uri=uri, experiment="gone",
               tracking_outage_s=0.001)
    real_log_batch, calls = MlflowClient.log_batch, []

    def log_batch(self, run_id, metrics=(), *a, **k):
        if metrics:  # params and tags go through log_batch too: they reach the server
            calls.append(len(metrics))
        if len(calls) > 2:  # the first two steps' points reach the server, then it is gone
            raise MlflowException(f"API request to {uri} failed: Connection refused")
        return real_log_batch(self, run_id, metrics, *a, **k)

    def probe(u, timeout_s=None):
        raise StoreUnavailable(f"tracking server {u} is unreachable")
    with monkeypatch.context() as mp:
        mp.setattr(MlflowClient, "log_batch", log_batch)
        mp.setattr(training_run, "probe", probe)
        with pytest.raises(metric_log.TrackingLost) as e:
            training_run.train_tracked(cfg)
    msg = str(e.value)
    assert "\n" not in msg and f"the tracking server {uri} has not answered" in msg, msg
    assert "training stopped after epoch 1, its checkpoint saved" in msg, msg
    assert f"--run-dir {tmp_path / 'run'} --resume" in msg
    _, client = connect(uri)
    exp = client.get_experiment_by_name("gone").experiment_id
    (first,) = client.search_runs([exp])
    assert first.info.status == "KILLED"
    assert len(client.get_metric_history(first.info.run_id, "step/train_loss")) == 2

    res = training_run.train_tracked(cfg.replace(resume=True))  # the server is back
    assert res["run_id"] == first.info.run_id
    (run,) = client.search_runs([exp])
    assert run.info.status == "FINISHED"
    spe = json.loads((tmp_path / "run/metrics.json").read_text())["history"][0]["steps"]
    for key, expected in (("step/train_loss", list(range(1, 3 * spe + 1))),
                          ("step/train_acc", list(range(1, 3 * spe + 1))),
                          ("epoch/val_loss", [1, 2, 3]), ("epoch/train_acc", [1, 2, 3]),
                          ("test_accuracy", [0])):
        steps = sorted(m.step for m in client.get_metric_history(res["run_id"], key))
        assert steps == expected, (key, steps)
    # The journal holds what was sent, and the server now holds all of it.
    journal = metric_log.read_journal(tmp_path / "run" / metric_log.JOURNAL)
    assert {(p["key"], p["step"]) for p in journal} <= metric_log.present_points(
        client, res["run_id"])


# --- Ctrl-C and SIGTERM during training ------------------------------------------------------

def _default_sigint() -> None:
    import signal
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _pipeline(tmp: Path, imdb_dir, *extra: str):
    import os
    import subprocess
    import sys
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "PREFECT_"))}
    env.update(PYTHONPATH=str(Path(__file__).resolve().parents[2]), OMP_NUM_THREADS="1",
               PREFECT_HOME=str(tmp / "prefect"), PREFECT_SERVER_ANALYTICS_ENABLED="false",
               PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="300", DO_NOT_TRACK="1",
               MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING="false", MLFLOW_DISABLE_TELEMETRY="true")
    # Enough epochs that training is still running when the signal comes.
    cmd = [sys.executable, "-m", "sentiment_cli.main", "pipeline", "--preset", "smoke",
           "--data", str(imdb_dir), "--encoder", "random-tiny", "--epochs", "1000",
           "--run-dir", str(tmp / "run"), "--cache-dir", str(tmp / "cache"),
           "--tracking-uri", f"sqlite:///{tmp / 'mlflow.db'}", "--no-progress",
           "--num-threads", "1", "--no-promote", *extra]
    err = open(tmp / f"stderr{len(list(tmp.glob('stderr*')))}", "w+")
    # A session of its own: the signal goes to its process group, as a terminal's Ctrl-C does.
    # SIGINT as a terminal leaves it: a test run started in the background (CI) ignores it,
    # and children inherit that.
    proc = subprocess.Popen(cmd, cwd=tmp, env=env, stdout=subprocess.DEVNULL, stderr=err,
                            start_new_session=True, preexec_fn=_default_sigint)
    return proc, err


@pytest.mark.slow
def test_ctrl_c_and_sigterm_stop_the_pipeline_cleanly(tmp_path, imdb_dir):
    """SIGINT to the process group during training, then SIGTERM to the resumed run: each exits
    within 10 s (130, then 143) with the --resume line, the MLflow run KILLED, the Prefect flow
    run Crashed, and no process of it left (the temporary Prefect API included)."""
    import os
    import signal
    import sqlite3
    import subprocess
    import time

    import psutil
    last = tmp_path / "run" / "checkpoints" / "last.safetensors"
    for sig, code, extra in ((signal.SIGINT, 130, ()), (signal.SIGTERM, 143, ("--resume",))):
        before = last.stat().st_mtime_ns if last.exists() else None
        proc, err = _pipeline(tmp_path, imdb_dir, *extra)
        deadline = time.monotonic() + 900
        while not last.exists() or last.stat().st_mtime_ns == before:  # an epoch of this attempt
            assert proc.poll() is None, open(err.name).read()[-3000:]
            assert time.monotonic() < deadline, "no checkpoint written"
            time.sleep(0.2)
        family = psutil.Process(proc.pid).children(recursive=True)
        assert family, "the temporary Prefect API should run beside the pipeline"
        t = time.monotonic()
        os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail(f"{sig.name}: still running 60 s later:\n{open(err.name).read()[-3000:]}")
        seconds = time.monotonic() - t
        stderr = open(err.name).read()
        assert proc.returncode == code, stderr[-3000:]
        assert seconds < 10, (sig.name, seconds)
        lines = [ln for ln in stderr.splitlines() if ln.startswith("sentiment pipeline:")]
        assert len(lines) == 1 and "--resume continues it" in lines[0], stderr[-3000:]
        assert "Traceback" not in stderr
        time.sleep(1)
        left = [p for p in family if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        assert not left, [p.cmdline()[:4] for p in left]
        with sqlite3.connect(tmp_path / "mlflow.db") as db:
            status = dict(db.execute("select name, status from runs where name like "
                                     "'%random-tiny%'").fetchall())
        assert list(status.values()) == ["KILLED"], status  # one run, resumed, killed again
        with sqlite3.connect(tmp_path / "prefect" / "prefect.db") as db:
            states = [s for (s,) in db.execute("select state_type from flow_run")]
        assert states and all(s == "CRASHED" for s in states), states


# --- serving limits --------------------------------------------------------------------------

def test_a_request_over_the_row_limit_is_refused_in_one_line(monkeypatch):
    pytest.importorskip("mlflow")
    from sentiment.tracking import pyfunc_model
    monkeypatch.delenv(pyfunc_model.MAX_ROWS_SETTING, raising=False)
    limit = pyfunc_model.MAX_ROWS
    assert len(pyfunc_model.as_texts(["a review"] * limit)) == limit
    with pytest.raises(pyfunc_model.InputRejected,
                       match=rf"^a request holds at most {limit} texts, this one {limit + 1}; "):
        pyfunc_model.as_texts(["a review"] * (limit + 1))
    monkeypatch.setenv(pyfunc_model.MAX_ROWS_SETTING, "3")
    with pytest.raises(pyfunc_model.InputRejected, match="at most 3 texts, this one 4"):
        pyfunc_model.as_texts(["a review"] * 4)


def test_large_requests_are_scored_in_chunks_with_the_same_results(monkeypatch):
    """Chunking inside a request changes nothing in the answers, and memory is given back
    after each request."""
    pytest.importorskip("mlflow")
    import pandas as pd

    from sentiment.common import memory
    from sentiment.tracking import pyfunc_model
    seen, released = [], []

    class Model:
        def predict_proba(self, texts):
            seen.append(len(texts))
            return np.array([len(t) % 7 / 7 for t in texts])
    monkeypatch.setattr(pyfunc_model, "CHUNK_ROWS", 4)
    monkeypatch.setattr(memory, "release_free_memory", lambda: released.append(1))
    m = pyfunc_model.SentimentPyfunc()
    m.model = Model()
    texts = [f"review {'x' * i}" for i in range(10)]
    out = m.predict(None, pd.DataFrame({"text": texts}))
    assert seen == [4, 4, 2] and released == [1]
    assert out["probability"].tolist() == [len(t) % 7 / 7 for t in texts]
