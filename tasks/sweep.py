"""Task: a head sweep (Optuna trials as nested MLflow runs under one parent run)."""

from __future__ import annotations

from typing import Optional

from prefect import task

from sentiment.config import Config
from sentiment.tracking import sweep_run
from tasks.options import NO_CACHING, PLAIN_PRINT


# No retries: a second attempt would run the whole sweep again.
@task(name="sweep-heads", **NO_CACHING, **PLAIN_PRINT)
def run_sweep(cfg: Config, tags: Optional[dict[str, str]] = None) -> dict:
    """{parent_run_id, study, best, rows}: the comparison table's rows and the best trial's run
    id and folder (a model folder, registrable like any training run's)."""
    return sweep_run.sweep_tracked(cfg, tags)
