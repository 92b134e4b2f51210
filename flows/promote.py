"""The promotion flow `promote-sentiment`: the same gate as the training flow's. The `champion`
alias moves to a model version only if its test accuracy reaches `min_accuracy`, beats the
bag-of-words baseline tested on the version's test set by `min_lift_over_baseline` and beats the
champion by `min_improvement`, all on the version's test set (a champion tested on another one
is re-scored there first). One promotion at a time per model name (`tasks.promotion_slot`, the
library's lock).

Each decision is recorded twice: as tags on the version (by the registry) and as a markdown
artifact with the comparison on this flow run; the run's logs say it in one line.
"""

from __future__ import annotations

from typing import Any, Literal, Optional

from prefect import flow, get_run_logger

from flows.artifacts import publish_decision
from flows.failure import failed
from flows.params import (
    DEFAULT_PRESET,
    OVERRIDES_HELP,
    PRESET_HELP,
    config_from_params,
    documented,
    preset_value,
)
from sentiment.config import Config
from tasks import promote_model


# As train-sentiment: nothing persisted, a failure returned as a state (flows/failure.py).
@flow(name="promote-sentiment", persist_result=False)
@documented(Config, preset_value, preset=PRESET_HELP, overrides=OVERRIDES_HELP,
            version="The model version to gate. Empty: the newest.")
def promote_sentiment(
    version: Optional[int] = None,
    preset: Literal["smoke", "quick", "full", "homework"] = DEFAULT_PRESET,
    tracking_uri: Optional[str] = None,
    model_name: Optional[str] = None,
    min_accuracy: Optional[float] = None,
    min_improvement: Optional[float] = None,
    min_lift_over_baseline: Optional[float] = None,
    overrides: Optional[dict[str, Any]] = None,
) -> dict:
    """Gate a version of the registered model; returns the decision.

    Every parameter but `version`, `preset` and `overrides` is the `sentiment.config.Config`
    field of that name, described by its help; left empty, it keeps the preset's value.
    """
    params = locals()  # first statement: exactly the parameters
    try:
        decision = promote_model(config_from_params(params), version)
    except Exception as e:
        return failed(e)
    publish_decision(decision)
    verdict = "promoted" if decision["promoted"] else "not promoted"
    get_run_logger().info(f"Version {decision['candidate']['version']} {verdict}: "
                          f"{decision['reason']}")
    return decision
