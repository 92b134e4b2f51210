"""Screenshots of the MLflow UI in headless Chromium: the experiment, a run's metric charts and
artifacts, the logged model, and the registered model with its versions and alias.

    python mlflow/screenshots.py                      # the repo's store if it has a model, else a demo
    python mlflow/screenshots.py --demo               # a fresh demo store in a temporary folder
    python mlflow/screenshots.py --store sqlite:///path/mlflow.db --out reports/mlflow-ui

The demo store holds two tiny trainings (random-init encoder, seconds on a CPU), both
registered, the first promoted to `champion`. The server is started with mlflow/server.sh on a
free port and stopped afterwards. Needs Chromium (Debian: apt-get install chromium); the
browser is driven over the DevTools protocol with the `websockets` package (installed with
the pipeline extra, through Prefect).

The pages show MLflow's classic model-training views: the UI's workflow switch is set to
"machine learning" (it opens in GenAI mode otherwise), its assistant panel is kept closed,
and each page is captured at the height of its content so whole chart sections fit.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
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

WIDTH, MIN_HEIGHT, MAX_HEIGHT = 1600, 1000, 6000
# The UI's own browser settings (localStorage, key_v<version> = JSON), set before its scripts
# run: the classic ML workflow rather than GenAI, and the assistant neither auto-opened on a
# first visit nor left open.
UI_SETTINGS = {"mlflow.workflowType_v1": "machine_learning",
               "mlflow.assistant.fab.autoOpenedOnFirstLoad_v1": True,
               "mlflow.assistant.panelOpen_v1": False}
# Plotly's chart toolbar shows on every chart in a headless window and hides the top of the
# curves; a screenshot has no use for it.
HIDE_CSS = ".modebar-container { display: none !important; }"
# Text, element count and placeholders still waiting for data (skeletons, spinners): a page
# has drawn when nothing is pending and these stop changing.
PAGE_STATE_JS = """document.body ? [document.body.innerText.length,
  document.getElementsByTagName('*').length,
  document.querySelectorAll('[class*="-skeleton"], [class*="-spin-spinning"]').length] : [0, 0, 1]"""
# The tallest scrolled content on the page: MLflow scrolls inside panels, not the document.
CONTENT_HEIGHT_JS = """Math.max(document.documentElement.scrollHeight,
  ...Array.from(document.querySelectorAll('*')).filter(e => {
     const s = getComputedStyle(e).overflowY;
     return (s === 'auto' || s === 'scroll') && e.scrollHeight > e.clientHeight + 2;
  }).map(e => e.scrollHeight - e.clientHeight + window.innerHeight))"""


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
    from sentiment.config import Config
    from sentiment.tracking import promotion, registry, training_run
    uri = f"sqlite:///{folder}/mlflow.db"
    os.environ.setdefault("MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL", "1")
    for i, seed in enumerate((1234, 7), start=1):
        cfg = Config.from_preset("smoke", data=data or _imdb(), encoder="random-tiny",
                                 run_dir=str(folder / f"run{i}"), cache_dir=str(folder / "cache"),
                                 tracking_uri=uri, progress=False, seed=seed, epochs=3,
                                 max_train=160, max_valid=64, max_test=128, num_threads=1)
        res = training_run.train_tracked(cfg)
        training_run.log_evaluation(res["run_id"], res["run_dir"], cfg)
        reg = registry.register_model(res["run_id"], res["run_dir"], cfg)
        print(f"demo: run {res['run_id']} -> {reg['model_uri']} "
              f"(test accuracy {res['test_accuracy']:.3f})", flush=True)
        if i == 1:
            promotion.promote(cfg, version=reg["version"])
    return uri


def _wait_http_ok(url: str, proc, log_path: Path, what: str, timeout: float = 180) -> None:
    from servers.http_wait import ServerExited, wait_http_ok
    try:
        wait_http_ok(url, timeout, poll=proc.poll)
    except (ServerExited, TimeoutError) as e:
        raise SystemExit(f"{what}: {e}:\n{log_path.read_text()[-3000:]}") from None


@contextlib.contextmanager
def _process_group(cmd: list[str], log_path: Path, env: dict | None = None):
    """A process in its own group, logging to log_path; the whole group is stopped on exit."""
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@contextlib.contextmanager
def server(uri: str, port: int, log_path: Path):
    env = dict(os.environ, MLFLOW_BACKEND_STORE_URI=uri, MLFLOW_UI_PORT=str(port),
               MLFLOW_UI_HOST="127.0.0.1", MLFLOW_UI_WORKERS="1")
    with _process_group(["bash", str(HERE / "server.sh")], log_path, env) as proc:
        base = f"http://127.0.0.1:{port}"
        _wait_http_ok(f"{base}/health", proc, log_path, "mlflow server")
        yield base


class Page:
    """One Chromium tab over the DevTools protocol: navigate, resize, screenshot."""

    def __init__(self, ws_url: str):
        from websockets.sync.client import connect
        self.ws = connect(ws_url, max_size=None, open_timeout=30)
        self.next_id = 0
        self.requests: set[str] = set()  # network requests in flight

    def _event(self, msg: dict) -> None:
        method, params = msg.get("method"), msg.get("params", {})
        if method == "Network.requestWillBeSent":
            self.requests.add(params["requestId"])
        elif method in ("Network.loadingFinished", "Network.loadingFailed"):
            self.requests.discard(params["requestId"])

    def call(self, method: str, timeout: float = 60, **params) -> dict:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:
            msg = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error'].get('message')}")
                return msg.get("result", {})
            self._event(msg)

    def evaluate(self, expression: str):
        res = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return res.get("result", {}).get("value")

    def resize(self, height: int) -> None:
        self.call("Emulation.setDeviceMetricsOverride", width=WIDTH, height=height,
                  deviceScaleFactor=1, mobile=False)

    def close(self) -> None:
        self.ws.close()


@contextlib.contextmanager
def chromium(executable: str, profile: Path, log_path: Path):
    """A headless Chromium and one tab in it, with the UI settings applied to every page."""
    port = _free_port()
    cmd = [executable, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", "--hide-scrollbars", f"--user-data-dir={profile}",
           f"--remote-debugging-port={port}", f"--window-size={WIDTH},{MIN_HEIGHT}",
           "about:blank"]
    with _process_group(cmd, log_path) as proc:
        _wait_http_ok(f"http://127.0.0.1:{port}/json/version", proc, log_path, "chromium", 60)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
            tab = next(t for t in json.loads(r.read()) if t.get("type") == "page")
        page = Page(tab["webSocketDebuggerUrl"])
        try:
            page.call("Page.enable")
            page.call("Network.enable")
            settings = "".join(f"localStorage.setItem({json.dumps(k)}, {json.dumps(json.dumps(v))});"
                               for k, v in UI_SETTINGS.items())
            style = (f"document.addEventListener('DOMContentLoaded', () => {{"
                     f" const s = document.createElement('style'); s.textContent = {json.dumps(HIDE_CSS)};"
                     f" document.head.appendChild(s); }});")
            page.call("Page.addScriptToEvaluateOnNewDocument",
                      source=f"try {{ {settings} }} catch (e) {{}} {style}")
            yield page
        finally:
            page.close()


def with_ml_view(route: str) -> str:
    """The route with the UI's workflow switch set to classic ML (the URL wins over storage)."""
    return route + ("&" if "?" in route else "?") + "workflowType=machine_learning"


def wait_until_drawn(page: Page, timeout_s: float, quiet_s: float = 2.0) -> None:
    """Until no request is in flight, no placeholder is left and the page has not changed for
    quiet_s (data fetched, charts drawn), or timeout_s."""
    deadline = time.monotonic() + timeout_s
    last, since = None, time.monotonic()
    while time.monotonic() < deadline:
        state = page.evaluate(PAGE_STATE_JS)
        if state != last or page.requests or state[2]:
            last, since = state, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return
        time.sleep(0.25)


def screenshot(page: Page, url: str, path: Path, settle_s: float) -> None:
    page.resize(MIN_HEIGHT)
    # A new document for every page: a route that differs from the last one only after '#'
    # would be a same-page navigation, and the artifact view keeps the file it showed before.
    page.call("Page.navigate", url="about:blank")
    time.sleep(0.5)
    page.requests.clear()  # a request of the previous page may never report its end
    page.call("Page.navigate", url=url)
    wait_until_drawn(page, settle_s)
    # Grow the window to the content so that every chart section is on screen (charts render
    # only when visible), then let them draw.
    height = int(page.evaluate(CONTENT_HEIGHT_JS) or MIN_HEIGHT)
    height = max(MIN_HEIGHT, min(MAX_HEIGHT, height))
    if height > MIN_HEIGHT:
        page.resize(height)
        wait_until_drawn(page, settle_s)
    data = page.call("Page.captureScreenshot", format="png")["data"]
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(base64.b64decode(data))
    tmp.replace(path)
    print(f"{path}  ({WIDTH}x{height})  <-  {url}", flush=True)


def pages(uri: str, experiment: str, model_name: str) -> list[tuple[str, str]]:
    """(file stem, UI route) for the pages worth a look, ids from the store: the champion's
    run (its overview, charts, report files and decision), the baseline run beside it and the
    two compared, the logged and registered model and the version."""
    from mlflow import MlflowClient

    from sentiment.tracking.names import BASELINE_ROLE, ROLE, RUN_TEST_SET
    client = MlflowClient(uri, uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        raise SystemExit(f"experiment {experiment!r} not found in {uri}")
    eid = exp.experiment_id
    try:
        champ = client.get_model_version_by_alias(model_name, "champion")
        run_id, version = champ.run_id, champ.version
        # The registry keeps the logged model as the version's source, models:/<model id>.
        model_id = champ.source.rpartition("/")[2] if champ.source.startswith("models:/m-") \
            else None
    except Exception:
        champ, version, model_id = None, None, None
        runs = client.search_runs([eid], order_by=["attributes.start_time DESC"], max_results=1)
        if not runs:
            raise SystemExit(f"experiment {experiment!r} has no runs") from None
        run_id = runs[0].info.run_id
    run = f"#/experiments/{eid}/runs/{run_id}"
    arts = {a.path for a in client.list_artifacts(run_id)}
    arts |= {a.path for d in ("evaluation", "validation", "promotion")
             for a in client.list_artifacts(run_id, d)}
    out = [("01-experiment-runs", f"#/experiments/{eid}/runs"),
           ("02-experiment-charts", f"#/experiments/{eid}/runs?compareRunsMode=CHART"),
           ("03-run-overview", run),
           ("04-run-model-metrics", f"{run}/model-metrics"),
           ("05-run-system-metrics", f"{run}/system-metrics"),
           ("06-run-artifacts-roc", f"{run}/artifacts/evaluation/roc_curve.png"),
           ("07-run-artifacts-model-card", f"{run}/artifacts/model_card.md")]
    optional = [("08-run-artifacts-comparison", "evaluation/comparison.png"),
                ("09-run-artifacts-validation", "validation/summary.html")]
    decisions = sorted((a for a in arts if a.startswith("promotion/comparison-")),
                       key=lambda a: int(a.rsplit("-", 1)[1].split(".")[0]))
    if decisions:
        optional.append(("10-run-artifacts-decision-chart", decisions[-1]))
    out += [(stem, f"{run}/artifacts/{path}") for stem, path in optional if path in arts]
    # The baseline run the pipeline trained beside it: same test set, role=baseline.
    test_set = client.get_run(run_id).data.tags.get(RUN_TEST_SET)
    base = client.search_runs([eid], filter_string=f"tags.{ROLE} = '{BASELINE_ROLE}' and "
                                                  f"tags.`{RUN_TEST_SET}` = '{test_set}'",
                              order_by=["attributes.start_time DESC"], max_results=1) \
        if test_set else []
    if base:
        brun = f"#/experiments/{eid}/runs/{base[0].info.run_id}"
        out += [("11-baseline-run-overview", brun),
                ("12-baseline-artifacts-model-card", f"{brun}/artifacts/model_card.md"),
                ("13-compare-model-and-baseline",
                 f"#/compare-runs?runs={json.dumps([run_id, base[0].info.run_id])}"
                 f"&experiments={json.dumps([eid])}")]
    if champ is not None:
        if model_id:
            out.append(("14-logged-model", f"#/experiments/{eid}/models/{model_id}"))
        out += [("15-registered-model", f"#/models/{model_name}"),
                ("16-model-version", f"#/models/{model_name}/versions/{version}")]
    return [(stem, with_ml_view(route)) for stem, route in out]


def main(argv: list[str] | None = None) -> int:
    from sentiment.config import Config
    from sentiment.tracking import store as mlflow_store
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--store", help="tracking URI to show (default: the repo's SQLite store)")
    p.add_argument("--demo", action="store_true", help="build a fresh demo store and show that")
    p.add_argument("--data", help="IMDB parquet folder for the demo (default: $IMDB_DATA)")
    p.add_argument("--out", default=str(REPO / "reports" / "mlflow-ui"),
                   help="folder for the PNG files")
    p.add_argument("--port", type=int, default=0, help="server port (default: a free one)")
    p.add_argument("--chromium", default=shutil.which("chromium") or shutil.which("chromium-browser")
                   or shutil.which("google-chrome"), help="Chromium executable")
    p.add_argument("--only", nargs="+", metavar="PREFIX",
                   help="only the pages whose file name starts with one of these (e.g. 07 16)")
    p.add_argument("--settle-s", type=float, default=30.0,
                   help="at most this many seconds for each page to load and draw its charts")
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
        uri = args.store or mlflow_store.tracking_uri(None)
        if not args.demo and not args.store:
            from mlflow import MlflowClient
            db = mlflow_store.sqlite_path(uri)
            has_model = False
            if db is None or db.exists():
                with contextlib.suppress(Exception):
                    has_model = bool(MlflowClient(uri, uri).search_registered_models(
                        f"name = '{defaults.model_name}'"))
            args.demo = not has_model
        if args.demo:
            uri = make_demo_store(tmp / "store", args.data)
        port = args.port or _free_port()
        with server(uri, port, tmp / "server.log") as base, \
                chromium(args.chromium, tmp / "profile", tmp / "chromium.log") as page:
            for stem, route in pages(uri, defaults.experiment, defaults.model_name):
                if args.only and not stem.startswith(tuple(args.only)):
                    continue
                screenshot(page, f"{base}/{route}", out / f"{stem}.png", args.settle_s)
    return 0


if __name__ == "__main__":
    sys.exit(main())
