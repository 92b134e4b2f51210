"""`mlflow server` on PostgreSQL with proxied artifacts: clients talk `http://` only and store
and fetch artifacts through the server (`mlflow-artifacts:/` URIs), so they need neither a
shared filesystem nor credentials for the artifact store."""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

from servers.layout import REPO, Settings, State
from servers.processes import spawn, wait_http_ok


def mlflow_bin() -> str:
    return str(Path(sys.executable).with_name("mlflow"))


def start(state: State, settings: Settings, port: int, db_uri: str, env: dict) -> dict:
    """Start the tracking server; its record once it answers /health."""
    if "://" not in settings.artifacts:
        Path(settings.artifacts).mkdir(parents=True, exist_ok=True)
    server_env = dict(env)
    # Through the environment, not the command line: the URI holds the database password.
    server_env["MLFLOW_BACKEND_STORE_URI"] = db_uri
    workers = os.environ.get("SENTIMENT_MLFLOW_WORKERS", "2")
    args = [mlflow_bin(), "server", "--host", settings.host, "--port", str(port),
            "--workers", workers, "--serve-artifacts",
            "--artifacts-destination", settings.artifacts,
            # e.g. "--app-name basic-auth": MLflow's users and permissions
            *shlex.split(os.environ.get("SENTIMENT_MLFLOW_ARGS", ""))]
    record = spawn(args, state.log("mlflow"), server_env, REPO)
    record.update(port=port, url=f"http://{client_host(settings)}:{port}")
    return record


def wait_ready(record: dict) -> None:
    # The first start creates and migrates the schema in PostgreSQL: it took 2 minutes on
    # 2 cores busy with a training.
    wait_http_ok(f"{record['url']}/health", record, 360, "the MLflow server")


def client_host(settings: Settings) -> str:
    """The address clients on this machine use: loopback when the server listens everywhere."""
    return "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
