"""Task: evaluation report of a trained run, logged to its MLflow run."""

from __future__ import annotations

from prefect import task

from sentiment.config import Config
from sentiment.tracking import training_run
from tasks.options import NO_CACHING, TRANSIENT_RETRIES


@task(name="evaluate-model", **NO_CACHING, **TRANSIENT_RETRIES)
def evaluate_model(run_id: str, run_dir: str, cfg: Config) -> dict:
    """Test metrics from the run's saved predictions (plots and tables go to MLflow)."""
    return training_run.log_evaluation(run_id, run_dir, cfg)
