"""Task: check the data contract (Great Expectations)."""

from __future__ import annotations

from prefect import task

from sentiment.config import Config
from sentiment.contract import validation
from tasks.options import NO_CACHING


@task(name="validate-data", **NO_CACHING)
def validate_data(cfg: Config, report_dir: str) -> dict:
    """The contract's verdict as a small dict, returned rather than raised: the flow publishes
    the summary first, then stops on a critical failure (`sentiment.contract.validation.ensure_valid`)."""
    result = validation.validate_data(cfg.data, cfg, report_dir)
    return {**result.to_dict(), "summary_markdown": result.summary_markdown}
