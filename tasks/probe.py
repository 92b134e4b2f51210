"""Task: check that the tracking store answers, before any other work starts."""

from __future__ import annotations

from prefect import task

from sentiment.config import Config
from sentiment.tracking import store
from tasks.options import NO_CACHING


# No retries: the probe is already bounded, and its point is to fail in seconds.
@task(name="probe-registry", **NO_CACHING)
def probe_registry(cfg: Config) -> str:
    """The tracking URI, once it answered; else a one-line error naming it and the cause."""
    uri = store.tracking_uri(cfg)
    store.configure(cfg)
    store.probe(uri, cfg.probe_timeout_s)
    return uri
