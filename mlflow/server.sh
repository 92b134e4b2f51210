#!/usr/bin/env bash
# Start the MLflow tracking server and UI for this project.
#
#   mlflow/server.sh                 # http://127.0.0.1:5000, store: mlflow/mlflow.db + mlflow/artifacts
#   MLFLOW_UI_PORT=5050 mlflow/server.sh
#   mlflow/server.sh --dev           # extra arguments go to `mlflow server`
#
# Settings live in mlflow/server.env; environment variables override them.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$HERE")"
# shellcheck source=server.env
source "${MLFLOW_SERVER_ENV:-$HERE/server.env}"

# The project's virtual environment if there is one, else whatever `mlflow` is on PATH.
if [[ -x "$REPO/.venv/bin/mlflow" ]]; then
    MLFLOW_BIN="$REPO/.venv/bin/mlflow"
else
    MLFLOW_BIN="$(command -v mlflow || true)"
fi
if [[ -z "$MLFLOW_BIN" ]]; then
    echo "server.sh: mlflow is not installed (pip install -e '.[pipeline]')" >&2
    exit 1
fi

args=(server --host "$MLFLOW_UI_HOST" --port "$MLFLOW_UI_PORT" --workers "$MLFLOW_UI_WORKERS")
if [[ -n "$MLFLOW_BACKEND_STORE_URI" ]]; then
    args+=(--backend-store-uri "$MLFLOW_BACKEND_STORE_URI")
else
    args+=(--backend-store-uri "sqlite:///$HERE/mlflow.db")
fi
if [[ -n "$MLFLOW_ARTIFACTS_DESTINATION" ]]; then
    # Team mode: clients upload and download through the server (mlflow-artifacts:/), so they
    # need no credentials for the object store.
    args+=(--serve-artifacts --artifacts-destination "$MLFLOW_ARTIFACTS_DESTINATION")
else
    # Local mode: new experiments keep artifacts as plain files under mlflow/artifacts, the
    # place `sentiment` writes to when it talks to the SQLite file directly, so runs logged
    # with or without the server read the same way.
    mkdir -p "$HERE/artifacts"
    args+=(--default-artifact-root "file://$HERE/artifacts"
           --serve-artifacts --artifacts-destination "$HERE/artifacts")
fi
if [[ -n "$MLFLOW_UI_ALLOWED_HOSTS" ]]; then
    args+=(--allowed-hosts "$MLFLOW_UI_ALLOWED_HOSTS")
fi

echo "MLflow UI: http://$MLFLOW_UI_HOST:$MLFLOW_UI_PORT  (store: ${MLFLOW_BACKEND_STORE_URI:-sqlite:///$HERE/mlflow.db})" >&2
exec "$MLFLOW_BIN" "${args[@]}" "$@"
