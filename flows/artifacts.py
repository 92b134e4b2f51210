"""What a person reads in the Prefect UI: the validation summary, the metrics, a link to the
MLflow run and the promotion decision, published as artifacts of the flow run."""

from __future__ import annotations

from typing import Optional

from prefect.artifacts import (create_link_artifact, create_markdown_artifact,
                               create_table_artifact)

# Keyed artifacts are listed, run after run, on the UI's Artifacts page; keys allow only
# lowercase letters, digits and dashes.
VALIDATION_KEY = "sentiment-validation"
METRICS_KEY = "sentiment-metrics"
MLFLOW_RUN_KEY = "sentiment-mlflow-run"
PROMOTION_KEY = "sentiment-promotion"

# A SQLite or file store has no web server of its own; `mlflow ui` serves it here by default.
LOCAL_MLFLOW_UI = "http://127.0.0.1:5000"


def mlflow_ui_url(tracking_uri: str) -> str:
    if tracking_uri.startswith(("http://", "https://")):
        return tracking_uri.rstrip("/")
    return LOCAL_MLFLOW_UI


def mlflow_run_url(tracking_uri: str, experiment_id: Optional[str], run_id: str) -> str:
    return f"{mlflow_ui_url(tracking_uri)}/#/experiments/{experiment_id}/runs/{run_id}"


def publish_validation(report: dict) -> None:
    verdict = "passed" if report["success"] else "FAILED"
    create_markdown_artifact(markdown=report["summary_markdown"], key=VALIDATION_KEY,
                             description=f"Data contract {verdict} for {report['data']}")


def publish_run_link(url: str, run_id: str, tracking_uri: str) -> None:
    serve = "" if tracking_uri.startswith(("http://", "https://")) else \
        f"; serve the store first: mlflow ui --backend-store-uri {tracking_uri}"
    create_link_artifact(link=url, link_text=f"MLflow run {run_id}", key=MLFLOW_RUN_KEY,
                         description=f"The training run in MLflow{serve}")


def publish_metrics(metrics: dict, stage_seconds: dict, tokenization: dict) -> None:
    rows = [{"metric": k, "value": round(float(v), 4)} for k, v in sorted(metrics.items())
            if isinstance(v, (int, float)) and not isinstance(v, bool)]
    rows.append({"metric": "tokenization_cache_hit", "value": bool(tokenization["cache_hit"])})
    rows += [{"metric": f"{stage}_seconds", "value": round(s, 1)}
             for stage, s in stage_seconds.items()]
    create_table_artifact(table=rows, key=METRICS_KEY,
                          description="Test metrics and wall time per stage")


def publish_decision(decision: dict) -> None:
    verdict = "promoted" if decision["promoted"] else "not promoted"
    create_markdown_artifact(markdown=decision["markdown"], key=PROMOTION_KEY,
                             description=f"Promotion gate: version "
                                         f"{decision['candidate']['version']} {verdict}")
