"""The training flow `train-sentiment`: validate → tokenize → train → evaluate → register →
promote, and `run_pipeline_cli`, which runs it in-process for `sentiment pipeline`.

A schedule runs this flow; the gate then decides whether the new version becomes the champion,
and the run's artifacts (validation summary, metrics, MLflow link, decision) say what happened.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Optional

from prefect import flow

from flows._params import DEFAULT_PRESET, config_from_params, params_for
from flows.artifacts import (mlflow_run_url, publish_decision, publish_metrics, publish_run_link,
                             publish_validation)
from sentiment.config import Config
from sentiment.validation import ValidationError, ensure_valid
from tasks import (evaluate_model, promote_model, register_model, train_model, validate_data,
                   warm_token_cache)


@flow(name="train-sentiment", log_prints=True)
def train_sentiment(
    preset: str = DEFAULT_PRESET,
    data: Optional[str] = None,
    run_dir: Optional[str] = None,
    cache_dir: Optional[str] = None,
    encoder: Optional[str] = None,
    max_length: Optional[int] = None,
    truncation: Optional[str] = None,
    max_train: Optional[int] = None,
    max_valid: Optional[int] = None,
    max_test: Optional[int] = None,
    epochs: Optional[int] = None,
    batch_size: Optional[int] = None,
    seed: Optional[int] = None,
    device: Optional[str] = None,
    num_threads: Optional[int] = None,
    progress: Optional[bool] = None,
    tracking_uri: Optional[str] = None,
    experiment: Optional[str] = None,
    model_name: Optional[str] = None,
    min_accuracy: Optional[float] = None,
    min_improvement: Optional[float] = None,
    overrides: Optional[dict[str, Any]] = None,
    promote: bool = True,
) -> dict:
    """Train, register and (unless `promote` is off) gate a new model version.

    Parameters are `sentiment.config.Config` fields by name; None keeps the preset's value and
    `overrides` sets any other field. Returns a summary: MLflow run id, model version, test
    accuracy, promoted or not, tokenization cache hit and wall time per stage.
    """
    cfg = config_from_params(locals())  # first statement: locals() is exactly the parameters
    clock = Stopwatch()

    with clock("validate"):
        report = validate_data(cfg, str(Path(cfg.run_dir) / "validation"))
    publish_validation(report)
    ensure_valid(report)  # a critical failure fails the run here: nothing tokenized or registered

    with clock("tokenize"):
        tokens = warm_token_cache(cfg)
    with clock("train"):
        run = train_model(cfg, report["report_dir"])
    run_url = mlflow_run_url(run["tracking_uri"], run["experiment_id"], run["run_id"])
    publish_run_link(run_url, run["run_id"], run["tracking_uri"])

    with clock("evaluate"):
        metrics = evaluate_model(run["run_id"], run["run_dir"], cfg)
    with clock("register"):
        version = register_model(run["run_id"], run["run_dir"], cfg)
    decision = None
    if promote:
        with clock("promote"):
            decision = promote_model(cfg, version["version"])
        publish_decision(decision)
    publish_metrics(metrics, clock.seconds, tokens)

    return summarize(run, run_url, version, decision, tokens, clock.seconds)


class Stopwatch:
    """Wall time per stage, as the person running the pipeline sees it (Prefect overhead in)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, stage: str):
        t = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] = round(time.perf_counter() - t, 2)


def summarize(run: dict, run_url: str, version: dict, decision: Optional[dict],
              tokens: dict, stage_seconds: dict) -> dict:
    champion = (decision or {}).get("champion_after") or None
    return {
        "run_id": run["run_id"],
        "mlflow_run_url": run_url,
        "tracking_uri": run["tracking_uri"],
        "model_name": version["name"],
        "model_version": int(version["version"]),
        "model_uri": version["model_uri"],
        "test_accuracy": float(version["test_accuracy"]),
        "promotion_ran": decision is not None,
        "promoted": bool(decision and decision["promoted"]),
        "promotion_reason": decision["reason"] if decision else "promotion switched off",
        "champion_version": int(champion["version"]) if champion else None,
        "tokenization_cache_hit": bool(tokens["cache_hit"]),
        "tokenization_seconds": round(float(tokens["seconds"]), 2),
        "stage_seconds": dict(stage_seconds),
        "run_dir": run["run_dir"],
    }


# ------------------------------------------------------------------------------------------
# `sentiment pipeline`
# ------------------------------------------------------------------------------------------

def run_pipeline_cli(cfg: Config, promote: bool) -> int:
    """Run the training flow in this process. Without PREFECT_API_URL, Prefect starts a
    temporary local API for the run; with it, the run shows up on that server."""
    t = time.perf_counter()
    try:
        summary = train_sentiment(**params_for(train_sentiment.fn, cfg, promote=promote))
    except ValidationError as e:
        print(f"sentiment pipeline: stopped before tokenization: {e}")
        return 1
    print(pipeline_report(summary, time.perf_counter() - t, explicit_store=bool(cfg.tracking_uri)))
    return 0


def pipeline_report(s: dict, total_seconds: float, explicit_store: bool) -> str:
    stages = " | ".join(f"{k} {v:.1f}s" for k, v in s["stage_seconds"].items())
    cache = "hit" if s["tokenization_cache_hit"] else "miss"
    name, uri = s["model_name"], s["tracking_uri"]
    if s["promoted"]:
        verdict = f"now the champion ({s['promotion_reason']})"
    elif s["promotion_ran"]:
        verdict = f"not promoted ({s['promotion_reason']})"
        verdict += (f"; the champion stays version {s['champion_version']}"
                    if s["champion_version"] else "; there is no champion yet")
    else:
        verdict = "not gated (--no-promote)"
    target = f"models:/{name}@champion" if s["champion_version"] else s["model_uri"]
    # `sentiment predict` finds a store other than the default through the environment.
    env = f"MLFLOW_TRACKING_URI={uri} " if explicit_store else ""
    ui = uri if uri.startswith(("http://", "https://")) else \
        f"mlflow ui --backend-store-uri {uri}"
    return "\n".join([
        "",
        f"Stages (wall): {stages} | total {total_seconds:.1f}s",
        f"Tokenization: cache {cache} ({s['tokenization_seconds']:.1f}s)",
        f"Test accuracy: {s['test_accuracy']:.4f}",
        f"Model: {name} version {s['model_version']}, {verdict}",
        f"MLflow UI: {ui}",
        f"  this run: {s['mlflow_run_url']}",
        f"Load it: {env}sentiment predict --model {target} \"What a wonderful film!\"",
        f"  Python: mlflow.pyfunc.load_model(\"{target}\") with tracking URI {uri}",
    ])
