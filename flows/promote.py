"""The promotion flow `promote-sentiment`: move the `champion` alias to a model version only if
its test accuracy reaches `min_accuracy` and beats the champion by at least `min_improvement`.

Each decision is recorded twice: as tags on the version (by `sentiment.tracking.promote`) and
as a markdown artifact with the comparison on this flow run.
"""

from __future__ import annotations

from typing import Any, Optional

from prefect import flow

from flows._params import DEFAULT_PRESET, config_from_params
from flows.artifacts import publish_decision
from tasks import promote_model


@flow(name="promote-sentiment", log_prints=True)
def promote_sentiment(
    version: Optional[int] = None,
    preset: str = DEFAULT_PRESET,
    tracking_uri: Optional[str] = None,
    model_name: Optional[str] = None,
    min_accuracy: Optional[float] = None,
    min_improvement: Optional[float] = None,
    overrides: Optional[dict[str, Any]] = None,
) -> dict:
    """Gate `version` (default: the newest) of the registered model; returns the decision."""
    cfg = config_from_params(locals())  # first statement: locals() is exactly the parameters
    decision = promote_model(cfg, version)
    publish_decision(decision)
    print(decision["markdown"])
    return decision
