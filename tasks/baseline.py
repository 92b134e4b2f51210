"""Task: train the bag-of-words baseline on the run's splits, track and register it."""

from __future__ import annotations

from typing import Optional

from prefect import task

from sentiment.config import Config
from sentiment.tracking import baseline_run
from tasks.options import NO_CACHING, TRANSIENT_RETRIES


# Retried like registration: its MLflow writes can fail transiently, and a failed attempt
# leaves a FAILED run and no version, so a retry starts clean.
@task(name="train-baseline", **NO_CACHING, **TRANSIENT_RETRIES)
def train_baseline(cfg: Config, tags: Optional[dict[str, str]] = None) -> dict:
    """{run_id, accuracy, test_set, version, model_uri, seconds, metrics}: the promotion
    gate's baseline."""
    return baseline_run.train_baseline(cfg, tags=tags)
