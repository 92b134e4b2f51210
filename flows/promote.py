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

from flows.artifacts import publish_decision, publish_history
from flows.failure import failed
from flows.params import (
    DEFAULT_PRESET,
    config_from_params,
)
from flows.run_tags import flow_run_actor
from tasks import champion_history, promote_model


# As train-sentiment: nothing persisted, a failure returned as a state (flows/failure.py).
@flow(name="promote-sentiment", persist_result=False)
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

    Args:
        version: The model version to gate. Empty: the newest.
        preset: Named preset the other parameters override: smoke (seconds, for checks), quick
            (minutes on 2 CPU cores; what `make run` trains), full (the full 17,500 / 7,500 /
            25,000 split), homework (the original model: frozen encoder, the full split at 512
            tokens).
        tracking_uri: MLflow tracking URI (None: $MLFLOW_TRACKING_URI or the local SQLite store
            under mlflow/). Empty: the preset's value.
        model_name: Registered model name in the MLflow registry. Empty: the preset's value.
        min_accuracy: Promotion gate: minimum test accuracy for the champion alias. Empty: the
            preset's value.
        min_improvement: Promotion gate: minimum test-accuracy gain over the champion on the
            candidate's test set; 0 means strictly better, a negative margin tolerates that much
            loss. Empty: the preset's value.
        min_lift_over_baseline: Promotion gate: minimum test-accuracy gain over the bag-of-words
            baseline tested on the candidate's test set; 0 means strictly better, a negative
            margin tolerates that much loss, -1 switches the rule off (no baseline needed).
            Empty: the preset's value.
        overrides: Any other Config field by name, as a JSON object, e.g. {"lr": 0.0003}.
    """
    params = locals()  # first statement: exactly the parameters
    try:
        cfg = config_from_params(params)
        decision = promote_model(cfg, version, flow_run_actor())
    except Exception as e:
        return failed(e)
    publish_decision(decision)
    publish_history(champion_history(cfg))
    verdict = "promoted" if decision["promoted"] else "not promoted"
    get_run_logger().info(f"Version {decision['candidate']['version']} {verdict}: "
                          f"{decision['reason']}")
    return decision
