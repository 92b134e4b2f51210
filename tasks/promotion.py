"""Task: the promotion gate, which moves the `champion` alias or leaves it."""

from __future__ import annotations

from typing import Optional

from prefect import task

from sentiment import registry
from sentiment.config import Config

from ._options import NO_CACHING, TRANSIENT_RETRIES


@task(name="promote-model", **NO_CACHING, **TRANSIENT_RETRIES)
def promote_model(cfg: Config, version: Optional[int] = None,
                  baseline: Optional[dict] = None) -> dict:
    """The decision (promoted, reason, candidate, champion before/after, markdown); the
    registry records it as tags on the version. `baseline`: train-baseline's result for the
    candidate's data."""
    return registry.promote(cfg, version, baseline=baseline)
