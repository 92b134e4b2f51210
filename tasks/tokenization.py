"""Task: warm the token cache, so that training reads every split's tokens from it."""

from __future__ import annotations

from prefect import task

from sentiment.config import Config
from sentiment.encoding import tokenization
from tasks.options import NO_CACHING, PLAIN_PRINT


@task(name="warm-token-cache", **NO_CACHING, **PLAIN_PRINT)
def warm_token_cache(cfg: Config) -> dict:
    """Cache files, fingerprints and `cache_hit` per split; training finds the same entries."""
    return tokenization.warm_cache(cfg)
