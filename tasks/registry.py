"""Task: register a run's model as a new version in the MLflow registry."""

from __future__ import annotations

from prefect import task

from sentiment.config import Config
from sentiment.tracking import registry
from tasks.options import NO_CACHING, TRANSIENT_RETRIES


@task(name="register-model", **NO_CACHING, **TRANSIENT_RETRIES)
def register_model(run_id: str, run_dir: str, cfg: Config) -> dict:
    """{name, version, model_uri, test_accuracy} of the new version."""
    return registry.register_model(run_id, run_dir, cfg)
