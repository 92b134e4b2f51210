#!/usr/bin/env bash
# Serve a registered model over HTTP on this machine, with pickle deserialization off.
#
#   mlflow/serve.sh                                   # models:/imdb-sentiment@champion on 127.0.0.1:5001
#   mlflow/serve.sh models:/imdb-sentiment/3 -p 5002  # extra arguments go to `mlflow models serve`
#
# The store is $MLFLOW_TRACKING_URI, else this folder's SQLite database. MLflow 3.17 unpickles
# models by default, so a pickled model in the store would run its code here on load; ours are
# logged as code with safetensors weights and load with it off. Set
# MLFLOW_ALLOW_PICKLE_DESERIALIZATION=true yourself only for a model you trust.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$HERE")"
MODEL="${1:-models:/imdb-sentiment@champion}"
[[ $# -gt 0 ]] && shift

if [[ -x "$REPO/.venv/bin/mlflow" ]]; then
    MLFLOW_BIN="$REPO/.venv/bin/mlflow"
else
    MLFLOW_BIN="$(command -v mlflow || true)"
fi
if [[ -z "$MLFLOW_BIN" ]]; then
    echo "serve.sh: mlflow is not installed (pip install -e '.[pipeline]')" >&2
    exit 1
fi

export MLFLOW_TRACKING_URI="${MLFLOW_TRACKING_URI:-sqlite:///$HERE/mlflow.db}"
export MLFLOW_ALLOW_PICKLE_DESERIALIZATION="${MLFLOW_ALLOW_PICKLE_DESERIALIZATION:-false}"
export MLFLOW_DISABLE_TELEMETRY="${MLFLOW_DISABLE_TELEMETRY:-true}"
# The request-time budget: a request of the model's maximum rows (2,000 texts) fits it on 2 CPU
# cores (mlflow/README.md, "Limits").
export MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT="${MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT:-120}"
# The scoring server execs uvicorn by name: the environment's bin folder goes first on PATH.
export PATH="$(dirname "$MLFLOW_BIN"):$PATH"

echo "Serving $MLFLOW_TRACKING_URI $MODEL (pickle deserialization: $MLFLOW_ALLOW_PICKLE_DESERIALIZATION)" >&2
exec "$MLFLOW_BIN" models serve -m "$MODEL" --env-manager local -h 127.0.0.1 -p 5001 "$@"
