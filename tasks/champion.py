"""Tasks: the champion's history, and a rollback of the alias to an earlier version."""

from __future__ import annotations

from typing import Optional

from prefect import task

from sentiment.config import Config
from sentiment.tracking import champion
from sentiment.tracking.store import connect, tracking_uri
from tasks.options import NO_CACHING
from tasks.promotion_slot import promotion_slot


@task(name="champion-history", **NO_CACHING)
def champion_history(cfg: Config) -> list[dict]:
    """Every move of the `champion` alias, oldest first."""
    _, client = connect(tracking_uri(cfg), cfg)
    return champion.history(client, cfg.model_name)


# No retries: a rollback that failed after moving the alias would, retried with the default
# target, go one promotion further back.
@task(name="rollback-champion", **NO_CACHING)
def rollback_champion(cfg: Config, to: Optional[int], reason: str, by: str) -> dict:
    """The rollback's decision; refused targets raise. One promoter at a time per model, as
    for a promotion: the server's concurrency limit, then the library's lock."""
    with promotion_slot(cfg.model_name, cfg.promotion_lock_timeout_s):
        return champion.rollback(cfg, to, reason, by)
