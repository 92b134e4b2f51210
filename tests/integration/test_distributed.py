"""Data-parallel training under torchrun on the CPU (gloo): two processes train the smoke preset
to the weights one process trains with the same global batch, into one run folder, one MLflow
run and one registered version; a rank killed mid-run fails the run without leaving a process
behind, and `--resume` completes it.

Dropout is off so that the two computations are the same function (each rank draws the dropout
masks of its own share of a batch); the batch size, 7, splits every batch into unequal shares.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sentiment.tracking import metric_log

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]

# Rank KILL_RANK SIGKILLs itself as it starts training epoch KILL_AT_EPOCH; otherwise the
# `sentiment` command as it is.
KILLER = """
import os, signal, sys
from sentiment.training import distributed, loop
train_epochs = 0
run_epoch = loop.run_epoch
def counting(*args, **kwargs):
    global train_epochs
    if kwargs.get("optimizer", args[5] if len(args) > 5 else None) is not None:
        train_epochs += 1
        if (train_epochs == int(os.environ["KILL_AT_EPOCH"])
                and distributed.rank() == int(os.environ["KILL_RANK"])):
            os.kill(os.getpid(), signal.SIGKILL)
    return run_epoch(*args, **kwargs)
loop.run_epoch = counting
from sentiment_cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_"))}
    env.update(MLFLOW_DISABLE_TELEMETRY="true", MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING="false",
               DO_NOT_TRACK="1", OMP_NUM_THREADS="1", SENTIMENT_DEVICE="cpu",
               PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    return env


def _torchrun(script: list[str], args: list[str], cwd: Path, **env) -> tuple[int, str, str]:
    """Two processes; returns (exit status, stdout, stderr)."""
    proc = subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--standalone",
                             "--nproc_per_node", "2", *script, *args],
                            cwd=cwd, env={**_env(), **env}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=1200)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        raise
    return proc.returncode, out, err


def _no_process_left(marker: str) -> bool:
    """No process's command line mentions `marker` (torchrun starts each rank in a session
    of its own, so its process group says nothing about them)."""
    left = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if marker in cmdline.read_bytes().decode(errors="replace"):
                left.append(int(cmdline.parent.name))
        except OSError:  # gone meanwhile
            continue
    for pid in left:  # leave nothing behind for the next test either
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass
    return not left


@pytest.fixture
def small_imdb(imdb_dir, tmp_path) -> Path:
    import pandas as pd
    data = tmp_path / "data"
    data.mkdir()
    pd.read_parquet(imdb_dir / "train.parquet").sample(80, random_state=0).to_parquet(
        data / "train.parquet", index=False)
    pd.read_parquet(imdb_dir / "test.parquet").sample(16, random_state=0).to_parquet(
        data / "test.parquet", index=False)
    return data


def test_two_processes_train_one_processs_model_and_resume_after_a_lost_rank(small_imdb,
                                                                             tmp_path,
                                                                             monkeypatch):
    from mlflow import MlflowClient
    from safetensors.torch import load_file

    from sentiment.config import Config
    from sentiment.tracking.registry import register_model
    from sentiment.training.loop import TrainHooks, train
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    options = dict(data=str(small_imdb), encoder="random-tiny", max_train=40, max_valid=16,
                   max_test=16, batch_size=7, epochs=2, dropout=0.0, num_threads=1,
                   cache_dir=str(tmp_path / "cache"))
    args = ["train", "--preset", "smoke", "--tracking-uri", uri, "--model-name", "ddp-test",
            "--experiment", "ddp-test"]
    for k, v in options.items():
        args += [f"--{k.replace('_', '-')}", str(v)]

    # One process, the same config: the reference.
    single = train(Config.from_preset("smoke", run_dir=str(tmp_path / "single"), track=False,
                                      progress=False, **options),
                   hooks=TrainHooks(report=lambda _m: None))

    # Two processes; rank 1 dies as epoch 2 starts (after rank 0 wrote epoch 1's checkpoint).
    killer = tmp_path / "killer.py"
    killer.write_text(KILLER)
    rc, out, err = _torchrun([str(killer)], args, tmp_path, KILL_RANK="1",
                                   KILL_AT_EPOCH="2")
    assert rc != 0
    assert _no_process_left(str(killer)), "a training process outlived the failed run"
    ours = [line for line in err.splitlines() if line.startswith("sentiment train:")]
    assert len(ours) == 1 and "--resume" in ours[0], err[-3000:]
    runs = [p for p in (tmp_path / "runs" / "smoke").iterdir() if p.name != "latest"]
    assert len(runs) == 1, runs  # one run folder: rank 1 never made its own
    run_dir = runs[0]
    assert json.loads((run_dir / "mlflow_run.json").read_text())["run_id"]

    # The resume, launched as the pipeline's training step launches it (train_processes=2).
    from sentiment.tracking.torchrun_training import train_tracked_torchrun
    for k, v in _env().items():
        monkeypatch.setenv(k, v)
    monkeypatch.chdir(tmp_path)
    cfg = Config.from_preset("smoke", tracking_uri=uri, model_name="ddp-test",
                             experiment="ddp-test", progress=False, **options)
    printed = train_tracked_torchrun(cfg.replace(run_dir=str(run_dir), resume=True), 2)
    assert Path(printed["run_dir"]).resolve() == run_dir.resolve()

    # The same weights as one process (float sums in another order: a tolerance, not equality).
    import torch
    a = load_file(str(Path(single["run_dir"]) / "model" / "head.safetensors"))
    b = load_file(str(run_dir / "model" / "head.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=1e-3, atol=1e-4, msg=k)
    assert printed["best_epoch"] == single["best_epoch"]

    # One MLflow run, continued by the resume and finished; one registered version.
    client = MlflowClient(uri, uri)
    exp = client.get_experiment_by_name("ddp-test")
    found = client.search_runs([exp.experiment_id])
    assert [r.info.run_id for r in found] == [printed["run_id"]]
    assert found[0].info.status == "FINISHED"
    register_model(printed["run_id"], str(run_dir), cfg)
    assert len(client.search_model_versions("name='ddp-test'")) == 1
    # The files one process writes, once each, and the run's link to MLflow: nothing else.
    def files(folder: Path) -> set:
        return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}
    # (The tracked run's own files: its link to MLflow and its metric journal.)
    tracked_only = {"mlflow_run.json", metric_log.JOURNAL}
    assert files(run_dir) - tracked_only == files(Path(single["run_dir"]))
