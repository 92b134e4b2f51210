"""Training runs under faults: two runs at once, kills during checkpoint and cache writes,
damaged checkpoints, unwritable or full disks, interrupted tracked runs.

Kills are made deterministic by a driver process that patches the write it is to die in: it
signals the test through a marker file, then waits there to be killed with SIGKILL.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from sentiment.config import Config

REPO = Path(__file__).resolve().parents[2]

DRIVER = r'''
import json, os, sys, time
from pathlib import Path
mode, marker, cfg_json = sys.argv[1], Path(sys.argv[2]), sys.argv[3]

def hang():
    marker.write_text(str(os.getpid()))
    time.sleep(600)

if mode == "checkpoint":  # die inside the second write of the last checkpoint, half written
    import safetensors.torch as st
    real, seen = st.save_file, []
    def save_file(tensors, filename, metadata=None):
        real(tensors, filename, metadata=metadata)
        if ".last.safetensors." in str(filename):
            seen.append(filename)
            if len(seen) == 2:
                with open(filename, "r+b") as f:
                    f.truncate(os.path.getsize(filename) // 2)
                hang()
    st.save_file = save_file
elif mode == "cache":  # die after the first batch of the encoder-state cache build
    import sentiment.training.state_cache as sc
    real_encode = sc.encode_batch
    def encode_batch(*a, **k):
        real_encode(*a, **k)
        hang()
    sc.encode_batch = encode_batch

from sentiment.config import Config
cfg = Config.from_dict(json.loads(cfg_json))
if mode == "pipeline":  # what the training flow does: train tracked, then register that run
    from sentiment.tracking import registry
    from sentiment.tracking import run_ref, training_run
    res = training_run.train_tracked(cfg)
    # Both runs finish training before either registers: when a shared folder would hold only
    # the last one's model and metrics.
    Path(f"{marker}.{os.getpid()}").write_text("")
    deadline = time.monotonic() + 300
    while len(list(marker.parent.glob(marker.name + ".*"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    run_dir = run_ref.run_dir_of(res["run_id"], res["run_dir"])
    reg = registry.register_model(res["run_id"], str(run_dir), cfg)
    print(json.dumps({"run_id": res["run_id"], "run_dir": str(run_dir.resolve()),
                      "version": reg["version"]}))
else:
    from sentiment.training.loop import train
    train(cfg)
'''


def _cfg(tmp: Path, imdb_dir, **kw) -> Config:
    base = dict(data=str(imdb_dir), run_dir=str(tmp / "run"), cache_dir=str(tmp / "cache"),
                encoder="random-tiny", progress=False, track=False, num_threads=1)
    return Config.from_preset("smoke", **{**base, **kw})


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update(PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", MLFLOW_DISABLE_TELEMETRY="true",
               MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING="false", DO_NOT_TRACK="1")
    return env


def _driver(tmp: Path) -> Path:
    path = tmp / "driver.py"
    path.write_text(DRIVER)
    return path


def _start(tmp: Path, mode: str, cfg: Config, marker: Path | None = None):
    marker = marker or tmp / f"{mode}.{time.monotonic_ns()}.marker"
    proc = subprocess.Popen([sys.executable, str(_driver(tmp)), mode, str(marker),
                             json.dumps(cfg.to_dict())], cwd=tmp, env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return proc, marker


def _wait_for(proc, marker: Path, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not marker.exists():
        if proc.poll() is not None:
            pytest.fail(f"driver exited ({proc.returncode}) early:\n{proc.stderr.read()[-3000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("driver did not reach the write it is to die in")
        time.sleep(0.05)


def _kill(proc) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    proc.stderr.close()


def _quiet(_msg: str) -> None:
    pass


def _heads(run_dir: Path) -> dict:
    from safetensors.torch import load_file
    return load_file(str(run_dir / "model" / "head.safetensors"))


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _hidden(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob(".*") if p.name != ".run.lock")


# --- every run owns its folder -----------------------------------------------------------

def test_runs_left_at_the_preset_folder_get_folders_of_their_own(tmp_path, monkeypatch):
    from sentiment.training import run_folder
    from sentiment.training.checkpoints import ResumeError
    monkeypatch.chdir(tmp_path)
    cfg = Config.from_preset("smoke", cache_dir=str(tmp_path / "cache"))
    a, b = run_folder.resolve(cfg), run_folder.resolve(cfg)
    assert a.run_dir != b.run_dir
    for c in (a, b):
        assert Path(c.run_dir).parent == Path("runs/smoke") and Path(c.run_dir).is_dir()
        assert run_folder.RUN_NAME.match(Path(c.run_dir).name)
    with pytest.raises(ResumeError, match=r"--resume needs --run-dir .*newest run there is "
                                          r"--run-dir runs/smoke/\d{8}-\d{6}-[0-9a-f]{6}$"):
        run_folder.resolve(cfg.replace(resume=True))
    # A folder the user names is used as given.
    named = cfg.replace(run_dir=str(tmp_path / "mine"))
    assert run_folder.resolve(named) is named


def test_registration_reads_only_the_folder_of_its_own_run(tmp_path):
    from sentiment.tracking.run_ref import RUN_REF, RunDirMismatch, run_dir_of
    (tmp_path / RUN_REF).write_text(json.dumps({"run_id": "b" * 32}))
    assert run_dir_of("b" * 32, tmp_path) == tmp_path
    with pytest.raises(RunDirMismatch, match=f"holds MLflow run {'b' * 32}, not run {'a' * 32}"):
        run_dir_of("a" * 32, tmp_path)
    with pytest.raises(RunDirMismatch, match="has no mlflow_run.json"):
        run_dir_of("a" * 32, tmp_path / "elsewhere")


@pytest.mark.slow
def test_two_pipelines_at_once_register_their_own_weights_and_accuracy(tmp_path, imdb_dir):
    """Two processes (train tracked + register, seeds 1 and 2) on one SQLite store, both
    leaving run_dir at the preset's and both done training before either registers: two
    versions, each with its own run's weights and accuracy tag."""
    from sentiment.tracking.store import connect
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    _, client = connect(uri)
    client.search_experiments()  # the store's schema exists before two writers race for it
    procs = []
    for seed in (1, 2):
        cfg = _cfg(tmp_path, imdb_dir, run_dir="runs/smoke", seed=seed, track=True,
                   tracking_uri=uri, experiment="faults", model_name="faults-model")
        procs.append(_start(tmp_path, "pipeline", cfg, tmp_path / "trained")[0])
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=400)
        assert proc.returncode == 0, err[-3000:]
        results.append(json.loads(out.strip().splitlines()[-1]))

    assert sorted(r["version"] for r in results) == [1, 2]
    assert len({r["run_id"] for r in results}) == 2 and len({r["run_dir"] for r in results}) == 2
    for r in results:
        run_dir = Path(r["run_dir"])
        assert run_dir.parent == (tmp_path / "runs" / "smoke").resolve()
        run = client.get_run(r["run_id"])
        assert Path(run.data.tags["run_dir"]).resolve() == run_dir
        mv = client.get_model_version("faults-model", str(r["version"]))
        assert mv.run_id == r["run_id"]
        # The version's weights are the ones its own run trained.
        dest = tmp_path / f"download-{r['version']}"
        import mlflow
        local = Path(mlflow.artifacts.download_artifacts(
            f"models:/faults-model/{r['version']}", dst_path=str(dest), tracking_uri=uri))
        heads = list(local.rglob("head.safetensors"))
        assert len(heads) == 1
        assert _sha256(heads[0]) == _sha256(run_dir / "model" / "head.safetensors")
        # Its accuracy tag is its own run's test accuracy.
        own = json.loads((run_dir / "metrics.json").read_text())["test"]["accuracy"]
        assert float(mv.tags["test_accuracy"]) == pytest.approx(own, abs=1e-6)
        assert run.data.metrics["test_accuracy"] == pytest.approx(own, abs=1e-6)
    assert _sha256(Path(results[0]["run_dir"]) / "model/head.safetensors") != \
        _sha256(Path(results[1]["run_dir"]) / "model/head.safetensors")
    # runs/smoke/latest points at one of them; the model commands take runs/smoke as is.
    from sentiment.model.model_folder import locate
    latest = (tmp_path / "runs/smoke/latest").resolve()
    assert str(latest) in {r["run_dir"] for r in results}
    assert locate(tmp_path / "runs/smoke").resolve() == latest / "model"


# --- kills during writes -------------------------------------------------------------------

@pytest.mark.slow
def test_kill_during_a_checkpoint_write_leaves_nothing_after_resume(tmp_path, imdb_dir):
    from sentiment.training.loop import TrainHooks, train
    from sentiment.training.run_folder import RunDirError
    cfg = _cfg(tmp_path, imdb_dir, epochs=3)
    proc, marker = _start(tmp_path, "checkpoint", cfg)
    _wait_for(proc, marker)
    # While it writes, the folder is its alone: a second run is refused at once.
    t = time.perf_counter()
    with pytest.raises(RunDirError, match=r"is in use by another run \(pid \d+"):
        train(cfg, hooks=TrainHooks(report=_quiet))
    assert time.perf_counter() - t < 5
    _kill(proc)
    run = tmp_path / "run"
    assert list(run.rglob("*.tmp")), "the kill should have left a half-written checkpoint"

    summary = train(cfg.replace(resume=True), hooks=TrainHooks(report=_quiet))
    assert [h["epoch"] for h in summary["history"]] == [1, 2, 3]
    assert not list(run.rglob("*.tmp")) and _hidden(run) == []
    assert (run / "checkpoints/last.safetensors").exists()
    assert (run / "checkpoints/previous.safetensors").exists()


@pytest.mark.slow
def test_kill_during_a_state_cache_build_leaves_nothing_after_the_next_run(tmp_path, imdb_dir):
    from sentiment.training.loop import TrainHooks, train
    cfg = _cfg(tmp_path, imdb_dir, run_dir=str(tmp_path / "first"))
    proc, marker = _start(tmp_path, "cache", cfg)
    _wait_for(proc, marker)
    _kill(proc)
    states = tmp_path / "cache" / "states"
    assert _hidden(states), "the kill should have left a half-built cache entry"

    train(cfg.replace(run_dir=str(tmp_path / "second")), hooks=TrainHooks(report=_quiet))
    assert _hidden(states) == []
    assert len([p for p in states.iterdir() if (p / "manifest.json").exists()]) == 3


# --- damaged checkpoints -------------------------------------------------------------------

def test_a_truncated_last_checkpoint_falls_back_to_the_previous_one(tmp_path, imdb_dir):
    from sentiment.training.loop import TrainHooks, train
    from sentiment.training.run_folder import RunDirError
    full = _cfg(tmp_path, imdb_dir, run_dir=str(tmp_path / "full"), epochs=3)
    train(full, hooks=TrainHooks(report=_quiet))
    part = full.replace(run_dir=str(tmp_path / "part"))
    with pytest.raises(KeyboardInterrupt):
        train(part, hooks=TrainHooks(report=_quiet, stop_after_epoch=2))
    # A fresh run does not overwrite the interrupted one.
    with pytest.raises(RunDirError, match=r"holds an interrupted run \(epoch 2 of 3\).*--resume"):
        train(part, hooks=TrainHooks(report=_quiet))
    last = tmp_path / "part/checkpoints/last.safetensors"
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])

    said = []
    summary = train(part.replace(resume=True), hooks=TrainHooks(report=said.append))
    assert any("last.safetensors is unreadable" in m and "previous.safetensors (epoch 1)" in m
               for m in said), said
    assert "Resuming from epoch 1" in "\n".join(said)
    assert [h["epoch"] for h in summary["history"]] == [1, 2, 3]
    a, b = _heads(tmp_path / "full"), _heads(tmp_path / "part")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _no_loading(monkeypatch):
    """Fail the test if data or an encoder is loaded."""
    from sentiment.data import imdb
    from sentiment.encoding import encoders

    def refuse(*a, **k):
        raise AssertionError("data or encoder loaded before the check")
    monkeypatch.setattr(imdb, "load_splits", refuse)
    monkeypatch.setattr(encoders, "load_encoder", refuse)


def test_resume_on_a_corrupt_only_checkpoint_says_what_to_do_before_loading(tmp_path, imdb_dir,
                                                                            monkeypatch):
    from sentiment.training.checkpoints import ResumeError
    from sentiment.training.loop import TrainHooks, train
    cfg = _cfg(tmp_path, imdb_dir, epochs=2)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, hooks=TrainHooks(report=_quiet, stop_after_epoch=1))
    last = tmp_path / "run/checkpoints/last.safetensors"
    assert not (tmp_path / "run/checkpoints/previous.safetensors").exists()
    last.write_bytes(last.read_bytes()[:100])
    _no_loading(monkeypatch)
    with pytest.raises(ResumeError) as e:
        train(cfg.replace(resume=True), hooks=TrainHooks(report=_quiet))
    msg = str(e.value)
    assert "\n" not in msg and "no readable checkpoint" in msg and "last.safetensors" in msg
    assert "without --resume" in msg


def test_unwritable_or_full_run_dir_fails_in_one_line_before_encoding(tmp_path, imdb_dir,
                                                                      monkeypatch):
    from sentiment.training import run_folder, state_cache
    from sentiment.training.loop import TrainHooks, train
    from sentiment.training.run_folder import RunDirError
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with monkeypatch.context() as mp:
        _no_loading(mp)
        with pytest.raises(RunDirError, match=r"^run dir .*a-file/run is not writable \("):
            train(_cfg(tmp_path, imdb_dir, run_dir=str(blocker / "run")),
                  hooks=TrainHooks(report=_quiet))
        with pytest.raises(RunDirError, match=r"^cache dir .*a-file/cache is not writable"):
            train(_cfg(tmp_path, imdb_dir, cache_dir=str(blocker / "cache")),
                  hooks=TrainHooks(report=_quiet))

    def no_encoding(*a, **k):
        raise AssertionError("encoding started before the space check")
    monkeypatch.setattr(state_cache, "encode_batch", no_encoding)
    monkeypatch.setattr(run_folder.shutil, "disk_usage",
                        lambda p: type("U", (), {"free": 1_000_000})())
    with pytest.raises(RunDirError, match=r"^not enough free disk space for this run: needs "
                                          r"encoder-state cache in .* MB free"):
        train(_cfg(tmp_path, imdb_dir, run_dir=str(tmp_path / "full-disk")),
              hooks=TrainHooks(report=_quiet))
    assert not (tmp_path / "full-disk" / "checkpoints").exists()


@pytest.mark.slow
@pytest.mark.parametrize("case", ["corrupt-checkpoint", "unwritable-run-dir"])
def test_cli_says_it_in_one_line_in_seconds(tmp_path, imdb_dir, case):
    run = tmp_path / "run"
    if case == "corrupt-checkpoint":
        (run / "checkpoints").mkdir(parents=True)
        (run / "checkpoints/last.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}")
        extra, needle = ["--resume"], "no readable checkpoint"
    else:
        (tmp_path / "a-file").write_text("")
        run = tmp_path / "a-file" / "run"
        extra, needle = [], "is not writable"
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "sentiment_cli.main", "train", "--preset", "smoke",
                        "--data", str(imdb_dir), "--run-dir", str(run), "--cache-dir",
                        str(tmp_path / "cache"), "--encoder", "random-tiny", "--no-progress",
                        "--no-track", *extra], cwd=tmp_path, env=_env(), capture_output=True,
                       text=True, timeout=120)
    seconds = time.perf_counter() - t
    assert r.returncode == 2, r.stderr
    assert needle in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "Epoch" not in r.stdout
    assert seconds < 30


# --- an interrupted tracked run ------------------------------------------------------------

def test_a_resumed_tracked_run_continues_its_mlflow_run_without_duplicate_points(
        tmp_path, imdb_dir, monkeypatch):
    pytest.importorskip("mlflow")
    from sentiment.tracking import run_ref, training_run
    from sentiment.tracking.store import connect
    from sentiment.training import checkpoints, loop
    monkeypatch.setenv("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING", "false")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    cfg = _cfg(tmp_path, imdb_dir, epochs=3, track=True, tracking_uri=uri, experiment="faults")
    # Interrupt inside epoch 2's checkpoint write: its steps are logged, its checkpoint is not.
    real, calls = checkpoints.save_checkpoint, []

    def interrupted(*a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt("interrupted while saving")
        return real(*a, **k)
    with monkeypatch.context() as mp:
        mp.setattr(loop, "save_checkpoint", interrupted)
        with pytest.raises(KeyboardInterrupt):
            training_run.train_tracked(cfg)
    _, client = connect(uri)
    (first,) = client.search_runs([client.get_experiment_by_name("faults").experiment_id])
    assert first.info.status == "KILLED"
    logged_before = len(client.get_metric_history(first.info.run_id, "step/train_loss"))

    res = training_run.train_tracked(cfg.replace(resume=True))
    assert res["run_id"] == first.info.run_id
    runs = client.search_runs([client.get_experiment_by_name("faults").experiment_id])
    assert [r.info.status for r in runs] == ["FINISHED"]
    steps_per_epoch = json.loads((tmp_path / "run/metrics.json").read_text())["history"][0]["steps"]
    assert logged_before == 2 * steps_per_epoch  # epoch 2's steps were logged, then repeated
    for key, expected in (("step/train_loss", list(range(1, 3 * steps_per_epoch + 1))),
                          ("step/train_acc", list(range(1, 3 * steps_per_epoch + 1))),
                          ("epoch/val_loss", [1, 2, 3]), ("test_accuracy", [0])):
        steps = sorted(m.step for m in client.get_metric_history(res["run_id"], key))
        assert steps == expected, (key, steps)
    assert run_ref.run_dir_of(res["run_id"], tmp_path / "run") == tmp_path / "run"
