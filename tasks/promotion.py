"""Task: the promotion gate, which moves the `champion` alias or leaves it."""

from __future__ import annotations

from typing import Optional

from prefect import task

from sentiment.config import Config
from sentiment.tracking import promotion
from tasks.options import NO_CACHING, TRANSIENT_RETRIES
from tasks.promotion_slot import promotion_slot


@task(name="promote-model", **NO_CACHING, **TRANSIENT_RETRIES)
def promote_model(cfg: Config, version: Optional[int] = None, by: Optional[str] = None) -> dict:
    """The decision (promoted, reason, candidate, champion before/after, the side-by-side
    comparison with the baseline tested on the candidate's test set, markdown); the registry
    records it on the version, with `by` (who asked: a flow run) for the champion history.
    One promoter at a time per model: the server's concurrency limit, then the library's
    lock."""
    with promotion_slot(cfg.model_name, cfg.promotion_lock_timeout_s):
        return promotion.promote(cfg, version, by=by)
