"""Task: the checks made before any work (writable folders, free disk, --resume's checkpoint)."""

from __future__ import annotations

from prefect import task

from sentiment.config import Config
from sentiment.tracking.store import store_needs
from sentiment.training import preflight
from tasks.options import NO_CACHING


# No retries: a full disk or a missing checkpoint does not go away on its own.
@task(name="check-before-work", **NO_CACHING)
def check_before_work(cfg: Config) -> None:
    """One-line errors, in seconds, before validation: see sentiment.training.preflight."""
    preflight.check_before_work(cfg, store_needs(cfg))
