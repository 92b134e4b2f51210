"""Where a person opens an MLflow run: the tracking server's own address, or for a local
store (SQLite or files, which have no web server) the address they serve it at."""

from __future__ import annotations

import os
from typing import Optional
from urllib.parse import urlsplit

# A SQLite or file store has no web server of its own: links point where the user serves it,
# MLFLOW_UI_URL, by default the address of `make mlflow-ui` and of a plain `mlflow ui`.
MLFLOW_UI_URL = "MLFLOW_UI_URL"
DEFAULT_MLFLOW_UI_URL = "http://127.0.0.1:5000"


def mlflow_ui_url(tracking_uri: str) -> str:
    """The MLflow UI for a store: the tracking server itself, or $MLFLOW_UI_URL."""
    if tracking_uri.startswith(("http://", "https://")):
        return tracking_uri.rstrip("/")
    return (os.environ.get(MLFLOW_UI_URL) or DEFAULT_MLFLOW_UI_URL).rstrip("/")


def serve_command(tracking_uri: str, mlflow: str = "mlflow") -> Optional[str]:
    """The command that serves a local store at the address `mlflow_ui_url` links to: `make
    mlflow-ui` (from the repository root) for the project's own store, else `mlflow ui`; None
    for a tracking server, which serves itself."""
    from sentiment.tracking.store import default_tracking_uri
    if tracking_uri.startswith(("http://", "https://")):
        return None
    port = urlsplit(mlflow_ui_url(tracking_uri)).port
    if tracking_uri == default_tracking_uri():
        return "make mlflow-ui" + (f" MLFLOW_UI_PORT={port}" if port and port != 5000 else "")
    return f"{mlflow} ui --backend-store-uri {tracking_uri}" + (f" --port {port}" if port else "")


def mlflow_run_url(tracking_uri: str, experiment_id: Optional[str], run_id: str) -> str:
    return f"{mlflow_ui_url(tracking_uri)}/#/experiments/{experiment_id}/runs/{run_id}"
