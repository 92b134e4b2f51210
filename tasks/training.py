"""Task: train the model inside an MLflow run."""

from __future__ import annotations

from typing import Optional

from prefect import get_run_logger, task

from sentiment.common import progress
from sentiment.config import Config
from sentiment.tracking import training_run
from tasks.options import NO_CACHING, PLAIN_PRINT


# No retries: a second attempt would train again from scratch and fail the same way.
@task(name="train-model", **NO_CACHING, **PLAIN_PRINT)
def train_model(cfg: Config, validation_report_dir: Optional[str] = None,
                tags: Optional[dict[str, str]] = None) -> dict:
    """The MLflow run id, the run folder and the test accuracy; the model stays on disk.
    `tags` go onto the MLflow run (the flow's links back to itself: see
    `sentiment.tracking.training_run.train_tracked`). Progress (epoch, batch, loss,
    tokens/s, about every 30 s) and the epoch lines go to the task run's logs."""
    with progress.lines_to(get_run_logger().info):
        return training_run.train_tracked(cfg, validation_report_dir, tags)
