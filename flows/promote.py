"""The promotion flow `promote-sentiment`: move the `champion` alias to a model version only if
its test accuracy reaches `min_accuracy` and beats the champion by at least `min_improvement`,
both measured on the version's test set (a champion tested on another one is re-scored there
first). One promotion at a time per model name (`tasks.promotion_slot`, the library's lock).

Each decision is recorded twice: as tags on the version (by the registry) and as a markdown
artifact with the comparison on this flow run; the run's logs say it in one line.
"""

from __future__ import annotations

from typing import Any, Literal, Optional

from prefect import flow, get_run_logger

from flows._params import DEFAULT_PRESET, config_from_params
from flows.artifacts import publish_decision
from flows.failure import failed
from tasks import promote_model


# As train-sentiment: nothing persisted, a failure returned as a state (flows/failure.py).
@flow(name="promote-sentiment", persist_result=False)
def promote_sentiment(
    version: Optional[int] = None,
    preset: Literal["smoke", "quick", "full", "homework"] = DEFAULT_PRESET,
    tracking_uri: Optional[str] = None,
    model_name: Optional[str] = None,
    min_accuracy: Optional[float] = None,
    min_improvement: Optional[float] = None,
    overrides: Optional[dict[str, Any]] = None,
) -> dict:
    """Gate a version of the registered model; returns the decision.

    Args:
        version: The model version to gate. Empty: the newest.
        preset: Named preset whose gate settings (min_accuracy, min_improvement) apply
            unless given here.
        tracking_uri: MLflow tracking URI. Empty: $MLFLOW_TRACKING_URI, else the SQLite
            store under mlflow/ in the clone the flow runs from.
        model_name: Registered model name in the MLflow registry. Empty: the preset's.
        min_accuracy: Minimum test accuracy for the champion alias. Empty: the preset's.
        min_improvement: Minimum test-accuracy gain over the champion; 0 means strictly
            better. Empty: the preset's.
        overrides: Any other Config field by name, as a JSON object.
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
