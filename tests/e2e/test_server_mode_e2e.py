"""Server mode end to end: `python -m servers start` (PostgreSQL, MLflow and Prefect servers on
it, the work pool, prefect.yaml's deployments, two process workers), then through the
deployments only:

- two smoke trainings started at once: both runs in MLflow, their artifacts downloadable over
  HTTP from another working directory, one `champion` chosen by the gate, both decisions kept;
  what the Prefect UI shows (typed, described parameters; the run's summary log lines) and the
  MLflow run's tags linking back to the flow run and its deployment;
- a training whose worker dies (the worker's process group and the flow run's, as when its
  machine goes down) ends Crashed through the heartbeat automation, and a re-run completes;
- a scoring run through `score-reviews/daily` writes a score for every input row;
- `python -m servers stop` leaves nothing it started, and nothing listened on a non-loopback
  address meanwhile.

The state folder and every port are the test's own; everything is stopped, pass or fail.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

pytest.importorskip("prefect")
pytest.importorskip("mlflow")
psutil = pytest.importorskip("psutil")
pytest.importorskip("psycopg2")
pytest.importorskip("asyncpg")

from conftest import free_port  # noqa: E402  (after the importorskip lines)

REPO = Path(__file__).resolve().parents[2]
CRASH_AFTER_S = 60        # heartbeats every 30 s (Prefect's minimum): Crashed 30-65 s after death
RUN_TIMEOUT_S = 420
LOOPBACK = {"127.0.0.1", "::1"}


def _pg_binaries() -> bool:
    return any(Path(d, "initdb").exists() for d in ("/usr/lib/postgresql/15/bin",
                                                     "/usr/local/bin")) or bool(
        shutil.which("initdb"))


def _servers(command: str, env: dict, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "servers", *command.split()], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def state_dir(tmp_path):
    # Not under pytest's tmp_path: its folders are closed to other users, and PostgreSQL runs
    # as the `postgres` user when the tests run as root.
    d = Path(tempfile.mkdtemp(prefix="sentiment-servers-", dir="/tmp"))
    d.chmod(0o711)
    yield d
    # The servers' logs stay with the test's folder, which pytest keeps when the test fails.
    if (d / "logs").is_dir():
        shutil.copytree(d / "logs", tmp_path / "server-logs", dirs_exist_ok=True)
    shutil.rmtree(d, ignore_errors=True)


class Seen:
    """Every process server mode started (with descendants) and every address they listened on,
    sampled while the test runs."""

    def __init__(self, state: Path):
        self.state = state
        self.pids: dict[int, float] = {}  # pid -> create time
        self.addresses: set[tuple[str, int, str]] = set()

    def sample(self) -> dict:
        records = json.loads((self.state / "processes.json").read_text())
        for name, rec in records.items():
            try:
                root = psutil.Process(rec["pid"])
                procs = [root] + root.children(recursive=True)
            except (psutil.NoSuchProcess, TypeError):
                continue
            for p in procs:
                try:
                    self.pids[p.pid] = p.create_time()
                    for c in p.net_connections(kind="inet"):
                        if c.status == psutil.CONN_LISTEN:
                            self.addresses.add((c.laddr.ip, c.laddr.port, name))
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    pass
        return records

    def still_running(self) -> list[str]:
        left = []
        for pid, created in self.pids.items():
            try:
                p = psutil.Process(pid)
                if abs(p.create_time() - created) < 1 and p.status() != psutil.STATUS_ZOMBIE:
                    left.append(f"{pid} {' '.join(p.cmdline()[:4])}")
            except psutil.NoSuchProcess:
                pass
        return left


def _env(state: Path) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PREFECT_") and k != "MLFLOW_TRACKING_URI"}
    env.update({
        "SENTIMENT_SERVERS_DIR": str(state),
        "SENTIMENT_PG_PORT": str(free_port()),
        "SENTIMENT_MLFLOW_PORT": str(free_port()),
        "SENTIMENT_PREFECT_PORT": str(free_port()),
        "SENTIMENT_PREFECT_UI": "0",
        "SENTIMENT_MLFLOW_WORKERS": "1",
        "SENTIMENT_CRASH_AFTER_S": str(CRASH_AFTER_S),
        # Only the runs this test starts: no scheduled run may take a worker meanwhile.
        "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false",
        # Workers poll every 2 s (default 10-15 s) and report every 5 s.
        "PREFECT_WORKER_QUERY_SECONDS": "2",
        "PREFECT_WORKER_HEARTBEAT_SECONDS": "5",
        "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false", "MLFLOW_DISABLE_TELEMETRY": "true",
        "OMP_NUM_THREADS": "1", "DO_NOT_TRACK": "1",
    })
    return env


@pytest.mark.skipif(not _pg_binaries(), reason="PostgreSQL server binaries (initdb) not installed")
def test_server_mode_end_to_end(imdb_dir, tmp_path, state_dir):
    env = _env(state_dir)
    seen = Seen(state_dir)
    _phase("begin")
    try:
        started = _servers("start", env)
        print(started.stdout)
        _phase("start")
        assert started.returncode == 0, started.stdout + started.stderr
        again = _servers("start", env, timeout=120)
        assert again.returncode == 0 and "already running" in again.stdout, again.stdout
        status = json.loads(_servers("status --json", env, timeout=120).stdout)
        assert all(p["running"] for p in status["processes"].values()), status
        assert {"postgres", "mlflow", "prefect-server", "worker-1", "worker-2"} <= set(
            status["processes"])
        records = seen.sample()
        urls = dict(line.removeprefix("export ").split("=", 1)
                    for line in (state_dir / "env").read_text().splitlines()
                    if line.startswith("export "))
        _check_through_the_deployments(urls["PREFECT_API_URL"], urls["MLFLOW_TRACKING_URI"],
                                       records, seen, imdb_dir, tmp_path, env)
    finally:
        _phase("checks")
        stopped = _servers("stop", env, timeout=300)
        print(stopped.stdout)
        _phase("stop")
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert not seen.still_running(), seen.still_running()
    assert not (state_dir / "processes.json").exists()
    outside = {a for a in seen.addresses if a[0] not in LOOPBACK}
    assert not outside, f"listened beyond loopback: {outside}"
    # Each server was seen listening (the check above looked at real sockets).
    assert {name for _, _, name in seen.addresses} >= {"postgres", "mlflow", "prefect-server"}


def _phase(name, t0=[]):  # noqa: B006  (the list keeps the previous phase's time)
    """Seconds since the previous phase, printed (pytest -s shows them)."""
    now = time.monotonic()
    if t0:
        print(f"{name}: {now - t0[0]:.0f} s")
    t0[:] = [now]


def _check_through_the_deployments(api, mlflow_uri, records, seen, imdb_dir, tmp_path, env):
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, PREFECT_HOME, temporary_settings

    assert mlflow_uri.startswith("http://127.0.0.1:") and api.startswith("http://127.0.0.1:")
    common = {"preset": "smoke", "data": str(imdb_dir), "cache_dir": str(tmp_path / "cache"),
              "tracking_uri": mlflow_uri, "encoder": "random-tiny", "progress": False,
              "num_threads": 1}

    def training(name):
        return dict(common, run_dir=str(tmp_path / name))

    with temporary_settings(updates={PREFECT_API_URL: api,
                                     PREFECT_HOME: str(tmp_path / "client-home")}):
        with get_client(sync_client=True) as client:
            train = client.read_deployment_by_name("train-sentiment/weekly")
            client.read_deployment_by_name("promote-sentiment/manual")
            assert [s.schedule.cron for s in train.schedules] == ["0 3 * * 1"]

            # Two trainings at once, one on each worker.
            a = client.create_flow_run_from_deployment(train.id, parameters=training("a"))
            b = client.create_flow_run_from_deployment(train.id, parameters=training("b"))
            runs = _wait_final(client, [a.id, b.id], seen)
            _phase("two trainings")
            assert [r.state.type.value for r in runs] == ["COMPLETED", "COMPLETED"], \
                [(r.state.name, r.state.message) for r in runs]
            first, second = sorted(runs, key=lambda r: r.start_time)
            assert second.start_time < first.end_time, "the two trainings did not overlap"
            logs = [log.message for log in client.read_logs(log_filter=_logs_of(a.id))]
            schema = train.parameter_openapi_schema["properties"]

            # A worker dies during a training: the run ends Crashed; a re-run completes.
            victim = client.create_flow_run_from_deployment(train.id, parameters=training("c"))
            run = _wait_running_with_heartbeat(client, api, victim.id, seen)
            flow_pid = int(run.infrastructure_pid.rsplit(":", 1)[-1])
            worker = _worker_of(records, flow_pid)
            doomed = [flow_pid] + [p.pid for p in psutil.Process(flow_pid).children(True)]
            os.killpg(worker["pgid"], signal.SIGKILL)
            os.killpg(os.getpgid(flow_pid), signal.SIGKILL)
            for pid in doomed:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            killed_at = time.time()
            _phase("third training until killed")

            # `start` again starts the dead worker only; the servers keep running.
            restarted = _servers("start", env, timeout=300)
            assert restarted.returncode == 0, restarted.stdout + restarted.stderr
            assert "started again" in restarted.stdout, restarted.stdout
            records = seen.sample()

            rerun = client.create_flow_run_from_deployment(train.id, parameters=training("c2"))
            pending = [victim.id, rerun.id]
            score_out = tmp_path / "scores.parquet"
            n_rows = _scoring_input(imdb_dir, tmp_path / "reviews.parquet")
            score = client.read_deployment_by_name("score-reviews/daily")
            scoring = client.create_flow_run_from_deployment(score.id, parameters={
                "input": str(tmp_path / "reviews.parquet"), "output": str(score_out),
                "tracking_uri": mlflow_uri, "workers": 1})
            pending.append(scoring.id)
            done = _wait_final(client, pending, seen)
            _phase("crash, re-run and scoring")
            assert done[0].state.type.value == "CRASHED", (done[0].state.name,
                                                           done[0].state.message)
            assert "heartbeat" in (done[0].state.message or ""), done[0].state.message
            assert all(r.state.type.value == "COMPLETED" for r in done[1:]), \
                [(r.state.name, r.state.message) for r in done]
            crashed_after = done[0].state.timestamp.timestamp() - killed_at
            print(f"crashed {crashed_after:.0f} s after the worker died")

    import mlflow
    client = mlflow.MlflowClient(tracking_uri=mlflow_uri, registry_uri=mlflow_uri)
    versions = {int(v.version): v for v in client.search_model_versions("name = 'imdb-sentiment'")}
    assert sorted(versions) == [1, 2, 3]  # a, b and the re-run (the crashed run registered none)
    champion = client.get_model_version_by_alias("imdb-sentiment", "champion")
    first_two = [client.get_model_version("imdb-sentiment", str(v)) for v in (1, 2)]
    for v in first_two:  # every decision is kept on its version
        assert v.tags["promotion_decision"] in ("promoted", "rejected"), v.tags
        assert v.tags["promotion.1.decision"] == v.tags["promotion_decision"]
    assert "promoted" in [v.tags["promotion_decision"] for v in first_two]
    assert champion.tags["promotion_decision"] == "promoted"
    best = max(float(v.tags["test_accuracy"]) for v in versions.values())
    assert float(champion.tags["test_accuracy"]) == best

    # The trainings' artifacts come over HTTP, into another working directory.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for v in first_two:
        run = client.get_run(v.run_id)
        assert run.info.artifact_uri.startswith("mlflow-artifacts:"), run.info.artifact_uri
        got = subprocess.run(
            [sys.executable, "-c",
             "import mlflow, sys; print(mlflow.artifacts.download_artifacts("
             "run_id=sys.argv[1], artifact_path='metrics.json', dst_path='dl', "
             "tracking_uri=sys.argv[2]))", v.run_id, mlflow_uri],
            cwd=elsewhere, capture_output=True, text=True, timeout=180,
            env={k: val for k, val in os.environ.items() if k != "MLFLOW_TRACKING_URI"})
        assert got.returncode == 0, got.stderr[-2000:]
        metrics = json.loads(Path(got.stdout.strip().splitlines()[-1]).read_text())
        assert metrics["test"]["accuracy"] == pytest.approx(float(v.tags["test_accuracy"]))

    # What the Prefect UI shows, and the MLflow run's links back to its flow run.
    assert all(p.get("description") for p in schema.values()), schema
    assert schema["preset"]["enum"] and schema["max_length"]["anyOf"][0]["type"] == "integer"
    assert any(m.startswith("Test accuracy: ") for m in logs), logs
    assert any(m.startswith("Promotion: ") for m in logs), logs
    run_a = [v for v in first_two
             if client.get_run(v.run_id).data.tags.get("prefect.flow_run_id") == str(a.id)]
    assert len(run_a) == 1
    tags = client.get_run(run_a[0].run_id).data.tags
    assert tags["prefect.deployment"] == "train-sentiment/weekly"
    assert tags["prefect.flow_run_url"] == \
        f"{api.removesuffix('/api')}/flow-runs/flow-run/{a.id}"

    # The champion's scores for every input row, in input order; the empty text keeps its
    # row, with an error instead of a score.
    import pandas as pd
    scores = pd.read_parquet(score_out)
    assert len(scores) == n_rows and scores["row"].tolist() == list(range(n_rows))
    assert (scores["model_version"] == int(champion.version)).all()
    empty = scores["row"] == EMPTY_ROW
    assert scores.loc[empty, "error"].notna().all() and scores.loc[empty, "probability"].isna().all()
    assert scores.loc[~empty, "probability"].between(0, 1).all()
    assert scores.loc[~empty, "error"].isna().all()


def _logs_of(flow_run_id):
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    return LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id]))


def _read_runs(client, ids):
    """The flow runs; None when the server answered 5xx (it can, on a saturated machine)."""
    from prefect.exceptions import PrefectHTTPStatusError
    try:
        return [client.read_flow_run(i) for i in ids]
    except PrefectHTTPStatusError as e:
        if e.response.status_code < 500:
            raise
        return None


def _wait_final(client, ids, seen, timeout=RUN_TIMEOUT_S):
    deadline = time.monotonic() + timeout
    while True:
        runs = _read_runs(client, ids)
        seen.sample()
        if runs is not None and all(r.state.is_final() for r in runs):
            return runs
        if time.monotonic() > deadline:
            pytest.fail(f"flow runs not final after {timeout} s: "
                        f"{[(r.name, r.state.name) for r in runs or []]}")
        time.sleep(2)


def _wait_running_with_heartbeat(client, api, flow_run_id, seen, timeout=RUN_TIMEOUT_S):
    """The flow run once it runs, has a process and the server has its first heartbeat (the
    automation only watches runs it has heard from)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen.sample()
        got = _read_runs(client, [flow_run_id])
        if got is None:
            time.sleep(1)
            continue
        run = got[0]
        if run.state.is_final():
            pytest.fail(f"the run ended ({run.state.name}) before the worker could be killed")
        if run.state.is_running() and run.infrastructure_pid and _heartbeats(api, flow_run_id):
            return run
        time.sleep(1)
    pytest.fail(f"flow run {flow_run_id} was not running with a heartbeat within {timeout} s")


def _heartbeats(api, flow_run_id) -> int:
    body = json.dumps({"filter": {
        "event": {"name": ["prefect.flow-run.heartbeat"]},
        "resource": {"id": [f"prefect.flow-run.{flow_run_id}"]},
        "occurred": {"since": "2000-01-01T00:00:00Z"}}, "limit": 10}).encode()
    req = urllib.request.Request(f"{api}/events/filter", data=body,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return len(json.loads(r.read())["events"])


def _worker_of(records, flow_pid) -> dict:
    """The worker whose process started the flow run's process."""
    parent = psutil.Process(flow_pid).ppid()
    for name, rec in records.items():
        if name.startswith("worker-") and rec["pid"] == parent:
            return rec
    pytest.fail(f"no worker is the parent ({parent}) of flow-run process {flow_pid}")


EMPTY_ROW = 7


def _scoring_input(imdb_dir, path) -> int:
    import pandas as pd
    df = pd.read_parquet(imdb_dir / "test.parquet").head(40)[["text"]].reset_index(drop=True)
    df.loc[EMPTY_ROW, "text"] = ""
    df.to_parquet(path)
    return len(df)
