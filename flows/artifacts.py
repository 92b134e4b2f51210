"""What a person reads in the Prefect UI: the settings the run resolved, the validation
summary, the metrics, a link to the MLflow run, the promotion or rollback decision and the
champion's history, published as artifacts of the flow run."""

from __future__ import annotations

from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact
from prefect.runtime import flow_run

from flows.mlflow_link import serve_command

# Keyed artifacts are listed on the UI's Artifacts page, where a key holds the latest of its
# versions; each run's keys end with its own id, so the page never shows one run's decision
# under another's. Keys allow only lowercase letters, digits and dashes.
SETTINGS_KEY = "sentiment-settings"
VALIDATION_KEY = "sentiment-validation"
METRICS_KEY = "sentiment-metrics"
MLFLOW_RUN_KEY = "sentiment-mlflow-run"
PROMOTION_KEY = "sentiment-promotion"
HISTORY_KEY = "sentiment-champion-history"
ROLLBACK_KEY = "sentiment-rollback"
# The Config fields that say what a training run does, in the order a person reads them.
SETTINGS = ("preset", "data", "encoder", "train_encoder_layers", "max_length", "truncation",
            "max_train", "max_valid", "max_test", "epochs", "batch_size", "lr", "seed", "blend",
            "baseline_kind", "device", "min_accuracy", "min_lift_over_baseline",
            "min_improvement", "model_name", "experiment", "run_dir")


def run_key(base: str) -> str:
    """`base` made this flow run's own: base-<first 8 hex digits of the run id>."""
    return f"{base}-{str(flow_run.id)[:8]}" if flow_run.id else base


def publish_settings(cfg) -> None:
    """The parameters as the preset resolved them (the run's form shows most as empty)."""
    values = cfg.to_dict()
    rows = [{"setting": k, "value": "None" if values[k] is None else str(values[k])}
            for k in SETTINGS if k in values]
    create_table_artifact(table=rows, key=run_key(SETTINGS_KEY),
                          description=f"Settings of this run: preset {cfg.preset} and what it "
                                      "resolved, with the parameters given")


def publish_validation(report: dict) -> None:
    verdict = "passed" if report["success"] else "FAILED"
    create_markdown_artifact(markdown=report["summary_markdown"], key=run_key(VALIDATION_KEY),
                             description=f"Data contract {verdict} for {report['data']}")


def publish_run_link(url: str, run_id: str, tracking_uri: str) -> None:
    serve = serve_command(tracking_uri)
    serve = f"; serve the store first: {serve}" if serve else ""
    create_link_artifact(link=url, link_text=f"MLflow run {run_id}", key=run_key(MLFLOW_RUN_KEY),
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
    create_table_artifact(table=rows, key=run_key(METRICS_KEY),
                          description=f"Test metrics of the candidate and the baseline on test "
                                      f"set {baseline['test_set']}, and wall time per stage")


def publish_decision(decision: dict) -> None:
    verdict = "promoted" if decision["promoted"] else "not promoted"
    create_markdown_artifact(markdown=decision["markdown"], key=run_key(PROMOTION_KEY),
                             description=f"Promotion gate: version "
                                         f"{decision['candidate']['version']} {verdict}")


def publish_history(moves: list[dict]) -> None:
    """Every move of the `champion` alias, newest first, as a table."""
    rows = [{"when": m["time"], "from": m["from"], "to": m["to"], "how": m["kind"],
             "by": m["by"], "reason": m["reason"]} for m in reversed(moves)]
    now = f"version {moves[-1]['to']}" if moves else "none"
    create_table_artifact(table=rows or [{"when": None, "from": None, "to": None, "how": None,
                                          "by": None, "reason": "no move recorded yet"}],
                          key=run_key(HISTORY_KEY),
                          description=f"Champion history: {len(moves)} moves, the last to {now}")


def publish_rollback(done: dict) -> None:
    create_markdown_artifact(markdown=done["markdown"], key=run_key(ROLLBACK_KEY),
                             description=f"Rollback of {done['model_name']} from version "
                                         f"{done['from']['version']} to {done['to']['version']}")
