"""Screenshots of the MLflow UI in headless Chromium: the experiment, a run's metric charts and
artifacts, and the registered model with its versions and alias.

    python mlflow/screenshots.py                      # the repo's store if it has a model, else a demo
    python mlflow/screenshots.py --demo               # a fresh demo store in a temporary folder
    python mlflow/screenshots.py --store sqlite:///path/mlflow.db --out reports/mlflow-ui

The demo store holds two tiny trainings (random-init encoder, seconds on a CPU), both
registered, the first promoted to `champion`. The server is started with mlflow/server.sh on a
free port and stopped afterwards. Needs Chromium (Debian: apt-get install chromium).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
# Run as a script, this file's folder (named `mlflow`) is sys.path[0]; the repo root must come
# first so that `import sentiment` works without an install, and mlflow/ must not stay on the
# path ahead of the real mlflow package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(REPO))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _imdb() -> str:
    for c in (os.environ.get("IMDB_DATA"), REPO.parent / "shared" / "data" / "imdb",
              REPO / "data" / "imdb"):
        if c and (Path(c) / "train.parquet").is_file():
            return str(c)
    raise SystemExit("no IMDB parquet data for the demo store: set IMDB_DATA or pass --data")


def make_demo_store(folder: Path, data: str | None) -> str:
    """Two tracked tiny trainings, both registered, the first promoted."""
    from sentiment import tracking
    from sentiment.config import Config
    uri = f"sqlite:///{folder}/mlflow.db"
    os.environ.setdefault("MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL", "1")
    for i, seed in enumerate((1234, 7), start=1):
        cfg = Config.from_preset("smoke", data=data or _imdb(), encoder="random-tiny",
                                 run_dir=str(folder / f"run{i}"), cache_dir=str(folder / "cache"),
                                 tracking_uri=uri, progress=False, seed=seed, epochs=3,
                                 max_train=160, max_valid=64, max_test=128, num_threads=1)
        res = tracking.train_tracked(cfg)
        tracking.log_evaluation(res["run_id"], res["run_dir"], cfg)
        reg = tracking.register_model(res["run_id"], res["run_dir"], cfg)
        print(f"demo: run {res['run_id']} -> {reg['model_uri']} "
              f"(test accuracy {res['test_accuracy']:.3f})", flush=True)
        if i == 1:
            tracking.promote(cfg, version=reg["version"])
    return uri


@contextlib.contextmanager
def server(uri: str, port: int, log_path: Path):
    env = dict(os.environ, MLFLOW_BACKEND_STORE_URI=uri, MLFLOW_UI_PORT=str(port),
               MLFLOW_UI_HOST="127.0.0.1", MLFLOW_UI_WORKERS="1")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(["bash", str(HERE / "server.sh")], env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"mlflow server exited:\n{log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"mlflow server not ready:\n{log_path.read_text()[-3000:]}")
            time.sleep(1)
        yield f"http://127.0.0.1:{port}"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def screenshot(chromium: str, url: str, path: Path, profile: Path, budget_ms: int,
               height: int = 1000) -> None:
    # Without --run-all-compositor-stages-before-draw the metric charts, which render only
    # once they are seen on screen, stay spinners under virtual time.
    cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", f"--user-data-dir={profile}", f"--window-size=1600,{height}",
           "--hide-scrollbars", "--run-all-compositor-stages-before-draw",
           f"--virtual-time-budget={budget_ms}", f"--screenshot={path}", url]
    subprocess.run(cmd, check=True, capture_output=True, timeout=180)
    print(f"{path}  <-  {url}", flush=True)


def pages(uri: str, experiment: str, model_name: str) -> list[tuple[str, str, int]]:
    """(file stem, UI route, window height) for the pages worth a look, ids from the store."""
    from mlflow import MlflowClient
    client = MlflowClient(uri, uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        raise SystemExit(f"experiment {experiment!r} not found in {uri}")
    eid = exp.experiment_id
    try:
        champ = client.get_model_version_by_alias(model_name, "champion")
        run_id, version = champ.run_id, champ.version
    except Exception:
        champ, version = None, None
        runs = client.search_runs([eid], order_by=["attributes.start_time DESC"], max_results=1)
        if not runs:
            raise SystemExit(f"experiment {experiment!r} has no runs")
        run_id = runs[0].info.run_id
    run = f"#/experiments/{eid}/runs/{run_id}"
    # The chart pages are tall so every metric section is in the picture.
    out = [("01-experiment-runs", f"#/experiments/{eid}/runs", 1000),
           ("02-experiment-charts", f"#/experiments/{eid}/runs?compareRunsMode=CHART", 2000),
           ("03-run-overview", run, 1600),
           ("04-run-model-metrics", f"{run}/model-metrics", 2400),
           ("05-run-system-metrics", f"{run}/system-metrics", 1800),
           ("06-run-artifacts-roc", f"{run}/artifacts/evaluation/roc_curve.png", 1000),
           ("07-run-artifacts-model-card", f"{run}/artifacts/model_card.md", 1000)]
    if champ is not None:
        out += [("08-registered-model", f"#/models/{model_name}", 1000),
                ("09-model-version", f"#/models/{model_name}/versions/{version}", 1400)]
    return out


def main(argv: list[str] | None = None) -> int:
    from sentiment import tracking
    from sentiment.config import Config
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--store", help="tracking URI to show (default: the repo's SQLite store)")
    p.add_argument("--demo", action="store_true", help="build a fresh demo store and show that")
    p.add_argument("--data", help="IMDB parquet folder for the demo (default: $IMDB_DATA)")
    p.add_argument("--out", default=str(REPO / "reports" / "mlflow-ui"),
                   help="folder for the PNG files")
    p.add_argument("--port", type=int, default=0, help="server port (default: a free one)")
    p.add_argument("--chromium", default=shutil.which("chromium") or shutil.which("chromium-browser")
                   or shutil.which("google-chrome"), help="Chromium executable")
    p.add_argument("--budget-ms", type=int, default=15000,
                   help="virtual time Chromium gives each page to render")
    args = p.parse_args(argv)
    if not args.chromium:
        raise SystemExit("Chromium not found: apt-get install chromium (or pass --chromium)")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    defaults = Config()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mlflow-ui-") as tmp:
        tmp = Path(tmp)
        uri = args.store or tracking.tracking_uri(None)
        if not args.demo and not args.store:
            from mlflow import MlflowClient
            db = tracking._sqlite_path(uri)
            has_model = False
            if db is None or db.exists():
                with contextlib.suppress(Exception):
                    has_model = bool(MlflowClient(uri, uri).search_registered_models(
                        f"name = '{defaults.model_name}'"))
            args.demo = not has_model
        if args.demo:
            uri = make_demo_store(tmp / "store", args.data)
        port = args.port or _free_port()
        with server(uri, port, tmp / "server.log") as base:
            for stem, route, height in pages(uri, defaults.experiment, defaults.model_name):
                screenshot(args.chromium, f"{base}/{route}", out / f"{stem}.png", tmp / "profile",
                           args.budget_ms, height)
    return 0


if __name__ == "__main__":
    sys.exit(main())
