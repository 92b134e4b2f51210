"""Task: tokenize every split into the fingerprinted `datasets` cache."""

from __future__ import annotations

from prefect import task

from sentiment import tokenization
from sentiment.config import Config

from ._options import NO_CACHING, PLAIN_PRINT


@task(name="tokenize-dataset", **NO_CACHING, **PLAIN_PRINT)
def tokenize_dataset(cfg: Config) -> dict:
    """Cache files, fingerprints and `cache_hit` per split; training reads the same entries."""
    return tokenization.tokenize_dataset(cfg)
