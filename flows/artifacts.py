"""What a person reads in the Prefect UI: the validation summary, the metrics, a link to the
MLflow run, the promotion or rollback decision and the champion's history, published as
artifacts of the flow run."""

from __future__ import annotations

from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact

from flows.mlflow_link import serve_command

# Keyed artifacts are listed, run after run, on the UI's Artifacts page; keys allow only
# lowercase letters, digits and dashes.
VALIDATION_KEY = "sentiment-validation"
METRICS_KEY = "sentiment-metrics"
MLFLOW_RUN_KEY = "sentiment-mlflow-run"
PROMOTION_KEY = "sentiment-promotion"
HISTORY_KEY = "sentiment-champion-history"
ROLLBACK_KEY = "sentiment-rollback"


def publish_validation(report: dict) -> None:
    verdict = "passed" if report["success"] else "FAILED"
    create_markdown_artifact(markdown=report["summary_markdown"], key=VALIDATION_KEY,
                             description=f"Data contract {verdict} for {report['data']}")


def publish_run_link(url: str, run_id: str, tracking_uri: str) -> None:
    serve = serve_command(tracking_uri)
    serve = f"; serve the store first: {serve}" if serve else ""
    create_link_artifact(link=url, link_text=f"MLflow run {run_id}", key=MLFLOW_RUN_KEY,
                         description=f"The training run in MLflow{serve}")


def publish_metrics(metrics: dict, baseline: dict, stage_seconds: dict,
                    token_cache: dict) -> None:
    """Candidate and baseline side by side (both scored on the run's test split), then the
    token cache and the wall time per stage, each in the column of the model it served."""
    def r4(v):
        return None if v is None else round(float(v), 4)
    base = baseline.get("metrics") or {"accuracy": baseline["accuracy"]}
    rows = [{"metric": k, "candidate": r4(v), "baseline": r4(base.get(k))}
            for k, v in sorted(metrics.items())
            if isinstance(v, (int, float)) and not isinstance(v, bool)]
    rows.append({"metric": "token_cache_hit", "candidate": bool(token_cache["cache_hit"]),
                 "baseline": None})
    for stage, s in stage_seconds.items():
        mine = stage == "baseline"
        rows.append({"metric": f"{stage}_seconds", "candidate": None if mine else round(s, 1),
                     "baseline": round(s, 1) if mine else None})
    create_table_artifact(table=rows, key=METRICS_KEY,
                          description=f"Test metrics of the candidate and the baseline on test "
                                      f"set {baseline['test_set']}, and wall time per stage")


def publish_decision(decision: dict) -> None:
    verdict = "promoted" if decision["promoted"] else "not promoted"
    create_markdown_artifact(markdown=decision["markdown"], key=PROMOTION_KEY,
                             description=f"Promotion gate: version "
                                         f"{decision['candidate']['version']} {verdict}")


def publish_history(moves: list[dict]) -> None:
    """Every move of the `champion` alias, newest first, as a table."""
    rows = [{"when": m["time"], "from": m["from"], "to": m["to"], "how": m["kind"],
             "by": m["by"], "reason": m["reason"]} for m in reversed(moves)]
    now = f"version {moves[-1]['to']}" if moves else "none"
    create_table_artifact(table=rows or [{"when": None, "from": None, "to": None, "how": None,
                                          "by": None, "reason": "no move recorded yet"}],
                          key=HISTORY_KEY,
                          description=f"Champion history: {len(moves)} moves, the last to {now}")


def publish_rollback(done: dict) -> None:
    create_markdown_artifact(markdown=done["markdown"], key=ROLLBACK_KEY,
                             description=f"Rollback of {done['model_name']} from version "
                                         f"{done['from']['version']} to {done['to']['version']}")
