"""Shared fixtures. Tests never touch the network: encoders are the packaged MiniLM or random-init.

Tests live in tests/unit (the library alone), tests/integration (MLflow stores, the Prefect test
harness, real data, subprocesses) and tests/e2e (server mode); each test carries its folder's
marker, so `-m unit` or `-m "not e2e"` selects by what a test needs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace

import pytest

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
GROUPS = ("unit", "integration", "e2e")

# Keep every library quiet and offline, whatever the developer's shell says.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
# Tiny test models gain nothing from a second thread, and several torch processes at 2 OpenMP
# threads each on 2 cores (the CLI and server tests start subprocesses) spin-wait ~4x slower.
os.environ.setdefault("OMP_NUM_THREADS", "1")


def pytest_collection_modifyitems(config, items):
    for item in items:
        try:
            folder = item.path.relative_to(TESTS).parts[0]
        except ValueError:  # a test file outside tests/
            continue
        if folder in GROUPS:
            item.add_marker(getattr(pytest.mark, folder))


def imdb_path() -> Path:
    return Path(os.environ.get("IMDB_DATA", REPO.parent / "shared" / "data" / "imdb"))


@pytest.fixture(scope="session")
def imdb_dir() -> Path:
    p = imdb_path()
    if not (p / "train.parquet").exists():
        pytest.skip(f"real IMDB parquet files not found at {p} (set IMDB_DATA)")
    return p


def free_port() -> int:
    """A loopback port free right now (servers started by tests bind 127.0.0.1 only)."""
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_process_group(proc, grace: float = 20.0) -> None:
    """SIGTERM a process started with start_new_session=True, then SIGKILL its whole group,
    so nothing a server forked (uvicorn workers, flow runs) outlives the test."""
    import signal
    import subprocess
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        if sig == signal.SIGTERM:
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                pass
    proc.wait()


def wait_http_ok(url: str, proc, timeout: float, log_tail, interval: float = 0.5) -> None:
    """Poll ``url`` until it answers 200; fail the test with the server's log (``log_tail()``)
    if ``proc`` exits first or ``timeout`` seconds pass."""
    from servers.http_wait import ServerExited
    from servers.http_wait import wait_http_ok as wait
    try:
        wait(url, timeout, poll=proc.poll, interval=interval)
    except (ServerExited, TimeoutError) as e:
        pytest.fail(f"{e}:\n{log_tail()}")


@pytest.fixture(scope="module")
def harness(tmp_path_factory):
    """A throwaway Prefect API (SQLite in tmp) and PREFECT_HOME, no telemetry; yields the home.
    One per module, so a module's flow runs (and results) see no other module's."""
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_HOME,
        PREFECT_SERVER_ANALYTICS_ENABLED,
        temporary_settings,
    )
    from prefect.testing.utilities import prefect_test_harness
    home = tmp_path_factory.mktemp("prefect-home")
    mp = pytest.MonkeyPatch()
    # The harness's server is a subprocess: it reads the environment, not this process's settings.
    mp.setenv("PREFECT_HOME", str(home))
    mp.setenv("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    mp.setenv("DO_NOT_TRACK", "1")
    mp.delenv("PREFECT_API_URL", raising=False)
    mp.delenv("MLFLOW_UI_URL", raising=False)  # links to a local store use the default address
    try:
        with temporary_settings(updates={PREFECT_HOME: str(home),
                                         PREFECT_SERVER_ANALYTICS_ENABLED: False},
                                restore_defaults={PREFECT_API_URL}):
            # Generous: the harness's server starts on cores the other tests' processes share.
            with prefect_test_harness(server_startup_timeout=300):
                yield home
    finally:
        mp.undo()


# ------------------------------------------------------------------------------------------
# One registered smoke model for the scoring tests (integration/test_scoring.py and
# integration/test_score_flow.py), trained once per session.
# ------------------------------------------------------------------------------------------

SCORING_MODEL = "imdb-sentiment-scoring-test"


def imdb_data() -> Path | None:
    """The real IMDB folder with both splits, or None."""
    for c in (os.environ.get("IMDB_DATA"), REPO.parent / "shared" / "data" / "imdb",
              "/work/shared/data/imdb"):
        if c and (Path(c) / "train.parquet").is_file() and (Path(c) / "test.parquet").is_file():
            return Path(c)
    return None


def reviews(n: int, seed: int = 0) -> list[str]:
    """`n` real test reviews, shortened (the smoke model reads 64 tokens of each)."""
    import pandas as pd
    test = pd.read_parquet(imdb_data() / "test.parquet", columns=["text"])
    return [t[:400] for t in test["text"].sample(n, random_state=seed)]


def _isolate_mlflow(mp: pytest.MonkeyPatch) -> None:
    """No MLflow settings of the developer's: the project's defaults (pickle off) apply."""
    for k in ("MLFLOW_TRACKING_URI", "MLFLOW_ALLOW_PICKLE_DESERIALIZATION"):
        mp.delenv(k, raising=False)
    mp.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    mp.setenv("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING", "false")
    mp.setenv("SENTIMENT_DEVICE", "cpu")


def _build_scoring_store(root: Path) -> dict:
    import pandas as pd
    from mlflow import MlflowClient

    from sentiment.config import Config
    from sentiment.tracking import registry, training_run
    data = root / "data"
    data.mkdir(parents=True)
    train = pd.read_parquet(imdb_data() / "train.parquet", columns=["text", "label"])
    test = pd.read_parquet(imdb_data() / "test.parquet", columns=["text", "label"])
    train.sample(64, random_state=0).to_parquet(data / "train.parquet", index=False)
    test.sample(16, random_state=0).to_parquet(data / "test.parquet", index=False)
    uri = f"sqlite:///{root}/mlflow.db"
    cfg = Config.from_preset("smoke", data=str(data), encoder="random-tiny",
                             run_dir=str(root / "run"), cache_dir=str(root / "cache"),
                             tracking_uri=uri, progress=False, model_name=SCORING_MODEL,
                             experiment="scoring-test", num_threads=1)
    res = training_run.train_tracked(cfg)
    version = registry.register_model(res["run_id"], res["run_dir"], cfg)["version"]
    MlflowClient(uri, uri).set_registered_model_alias(SCORING_MODEL, "champion", str(version))
    return {"uri": uri, "run_dir": res["run_dir"], "run_id": res["run_id"],
            "version": int(version), "model": f"models:/{SCORING_MODEL}@champion"}


@pytest.fixture(scope="module")
def scoring_store(tmp_path_factory):
    """The registered smoke model, built once per session in the session's temp folder."""
    pytest.importorskip("mlflow")
    if imdb_data() is None:
        pytest.skip("IMDB parquet data not found (set IMDB_DATA)")
    root = tmp_path_factory.getbasetemp() / "scoring-store"
    ready = root / "store.json"
    mp = pytest.MonkeyPatch()
    _isolate_mlflow(mp)
    try:
        if not ready.exists():
            root.mkdir(exist_ok=True)
            mp.chdir(root)
            ready.write_text(json.dumps(_build_scoring_store(root)))
        yield SimpleNamespace(**json.loads(ready.read_text()))
    finally:
        mp.undo()
