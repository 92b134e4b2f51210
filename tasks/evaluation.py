"""Task: evaluation report of a trained run, logged to its MLflow run."""

from __future__ import annotations

from typing import Optional

from prefect import task

from sentiment.config import Config
from sentiment.tracking import training_run
from tasks.options import NO_CACHING, TRANSIENT_RETRIES


@task(name="evaluate-model", **NO_CACHING, **TRANSIENT_RETRIES)
def evaluate_model(run_id: str, run_dir: str, cfg: Config,
                   baseline: Optional[dict] = None) -> dict:
    """Test metrics from the run's saved predictions (plots and tables go to MLflow); with the
    `baseline` tested on the same reviews, the lift over it and a chart of both."""
    return training_run.log_evaluation(run_id, run_dir, cfg, baseline)
