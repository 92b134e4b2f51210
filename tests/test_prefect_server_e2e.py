"""End to end through a real Prefect server: deploy prefect.yaml, run the training deployment
on a process worker, and find the new version and the `champion` alias in MLflow; what the
Prefect UI shows (parameter descriptions, the run's summary log lines) and the MLflow run's
tags linking back to the flow run and its deployment.

Everything runs on 127.0.0.1 with a temporary PREFECT_HOME; every process this test starts
runs in its own process group and is killed at the end, pass or fail.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

pytest.importorskip("prefect")
pytest.importorskip("mlflow")

from conftest import free_port, stop_process_group, wait_http_ok

REPO = Path(__file__).resolve().parents[1]
PREFECT = str(Path(sys.executable).with_name("prefect"))
POOL = "sentiment-process"  # as in prefect.yaml


class Processes:
    """Background processes, each the leader of its own process group."""

    def __init__(self, logs: Path):
        self.logs = logs
        self.procs: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, args: list[str], env: dict) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "w")
        p = subprocess.Popen(args, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                             start_new_session=True)
        self.procs.append((name, p))
        return p

    def tail(self, name: str, n: int = 60) -> str:
        path = self.logs / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:]) if path.exists() else ""

    def stop(self) -> None:
        # The worker first, so it does not submit anything to a server going away.
        for _, p in reversed(self.procs):
            stop_process_group(p, grace=15)


def _run(args: list[str], env: dict, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_scheduled_training_deployment_on_a_process_worker(imdb_dir, tmp_path):
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update({
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
        "PREFECT_API_URL": api,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PREFECT_CLI_PROMPT": "false",
        # Poll often: the default 10-15 s between polls would dominate a smoke run.
        "PREFECT_WORKER_QUERY_SECONDS": "2",
        "PREFECT_WORKER_HEARTBEAT_SECONDS": "5",
        # The pull step of prefect.yaml sets the flow run's working directory to this clone.
        "SENTIMENT_REPO": str(REPO),
        "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false", "MLFLOW_DISABLE_TELEMETRY": "true",
    })
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    params = {"preset": "smoke", "data": str(imdb_dir), "run_dir": str(tmp_path / "run"),
              "cache_dir": str(tmp_path / "cache"), "tracking_uri": uri,
              "encoder": "random-tiny", "progress": False, "num_threads": 1}

    procs = Processes(tmp_path)
    try:
        server = procs.start("server", [PREFECT, "server", "start", "--host", "127.0.0.1",
                                        "--port", str(port), "--no-ui"], env)
        wait_http_ok(f"{api}/health", server, 120, lambda: procs.tail("server"))

        r = _run([PREFECT, "work-pool", "create", POOL, "--type", "process"], env, 60)
        assert r.returncode == 0, r.stdout + r.stderr
        r = _run([PREFECT, "--no-prompt", "deploy", "--all"], env, 120)
        assert r.returncode == 0, r.stdout + r.stderr
        r = _run([PREFECT, "deployment", "inspect", "train-sentiment/weekly"], env, 60)
        assert r.returncode == 0 and "0 3 * * 1" in r.stdout, r.stdout + r.stderr
        r = _run([PREFECT, "deployment", "inspect", "promote-sentiment/manual"], env, 60)
        assert r.returncode == 0, r.stdout + r.stderr

        worker = procs.start("worker", [PREFECT, "worker", "start", "--pool", POOL,
                                        "--type", "process"], env)
        r = _run([PREFECT, "deployment", "run", "train-sentiment/weekly",
                  "--params", json.dumps(params), "--watch", "--watch-timeout", "240"], env, 270)
        assert r.returncode == 0 and "Completed" in r.stdout, (
            f"{r.stdout}\n{r.stderr}\n--- worker ---\n{procs.tail('worker', 120)}")
        assert worker.poll() is None, procs.tail("worker")
        shown = _what_the_ui_shows(api, tmp_path / "client-home")
    finally:
        procs.stop()
    for _, p in procs.procs:
        assert p.poll() is not None

    import mlflow
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    versions = client.search_model_versions("name = 'imdb-sentiment'")
    assert [int(v.version) for v in versions] == [1]
    assert int(client.get_model_version_by_alias("imdb-sentiment", "champion").version) == 1
    tags = client.get_model_version("imdb-sentiment", "1").tags
    assert tags["promotion_decision"] == "promoted"
    assert (tmp_path / "run" / "model").is_dir()

    # The deployment's parameters are typed and described in the UI's form.
    schema = shown["schema"]["properties"]
    assert all(p.get("description") for p in schema.values()), schema
    assert schema["preset"]["enum"] and schema["max_length"]["anyOf"][0]["type"] == "integer"
    # The run's logs end with the summary; the MLflow run links back to the flow run.
    logs = shown["logs"]
    assert any(m.startswith("Test accuracy: ") for m in logs), logs
    assert "Model: imdb-sentiment version 1 (models:/imdb-sentiment/1)" in logs
    assert any(m.startswith("Promotion: promoted to champion: ") for m in logs), logs
    run_tags = client.get_run(client.get_model_version("imdb-sentiment", "1").run_id).data.tags
    assert run_tags["prefect.flow_run_id"] == shown["flow_run_id"]
    assert run_tags["prefect.deployment"] == "train-sentiment/weekly"
    assert run_tags["prefect.flow_run_url"] == \
        f"http://127.0.0.1:{port}/flow-runs/flow-run/{shown['flow_run_id']}"


def _what_the_ui_shows(api: str, home: Path) -> dict:
    """The training deployment's parameter schema, and the logs of its one finished flow run
    (the schedule has queued others)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (FlowRunFilter, FlowRunFilterState,
                                                FlowRunFilterStateType, LogFilter,
                                                LogFilterFlowRunId)
    from prefect.client.schemas.objects import StateType
    from prefect.settings import PREFECT_API_URL, PREFECT_HOME, temporary_settings
    done = FlowRunFilter(state=FlowRunFilterState(
        type=FlowRunFilterStateType(any_=[StateType.COMPLETED])))
    with temporary_settings(updates={PREFECT_API_URL: api, PREFECT_HOME: str(home)}):
        with get_client(sync_client=True) as c:
            deployment = c.read_deployment_by_name("train-sentiment/weekly")
            [run] = c.read_flow_runs(flow_run_filter=done)
            logs = c.read_logs(log_filter=LogFilter(
                flow_run_id=LogFilterFlowRunId(any_=[run.id])))
    return {"schema": deployment.parameter_openapi_schema, "flow_run_id": str(run.id),
            "logs": [log.message for log in logs]}
