"""The rollback flow `rollback-champion`: move the `champion` alias back to an earlier version
(by default the champion before the last promotion), under the same lock as a promotion.

No accuracy gate (undoing a promotion is the point), but a version whose files fail the
checksums recorded at registration, that needs pickle or no longer loads is refused. The
decision is recorded on the version like a promotion's; the flow run publishes it and the
champion's whole history as artifacts.
"""

from __future__ import annotations

from typing import Any, Literal, Optional

from prefect import flow, get_run_logger

from flows.artifacts import publish_history, publish_rollback
from flows.failure import failed
from flows.params import DEFAULT_PRESET, config_from_params
from flows.run_tags import flow_run_actor
from tasks import champion_history, rollback_champion


@flow(name="rollback-champion", persist_result=False)
def rollback_champion_flow(
    reason: str,
    to: Optional[int] = None,
    preset: Literal["smoke", "quick", "full", "homework"] = DEFAULT_PRESET,
    tracking_uri: Optional[str] = None,
    model_name: Optional[str] = None,
    overrides: Optional[dict[str, Any]] = None,
) -> dict:
    """Roll the champion back; returns the decision.

    Args:
        reason: Why the champion is rolled back: recorded with the decision and in the history.
        to: The version to roll the champion back to. Empty: the champion before the promotion
            of the current one.
        preset: Named preset the other parameters override: smoke (seconds, for checks), quick
            (minutes on 2 CPU cores; what `make run` trains), full (the full 17,500 / 7,500 /
            25,000 split), homework (the original model: frozen encoder, the full split at 512
            tokens).
        tracking_uri: MLflow tracking URI (None: $MLFLOW_TRACKING_URI or the local SQLite store
            under mlflow/). Empty: the preset's value.
        model_name: Registered model name in the MLflow registry. Empty: the preset's value.
        overrides: Any other Config field by name, as a JSON object, e.g. {"lr": 0.0003}.
    """
    params = locals()  # first statement: exactly the parameters
    try:
        cfg = config_from_params(params)
        done = rollback_champion(cfg, to, reason, flow_run_actor())
    except Exception as e:
        return failed(e)
    publish_rollback(done)
    publish_history(champion_history(cfg))
    get_run_logger().info(f"Rolled back {done['model_name']} from version "
                          f"{done['from']['version']} to {done['to']['version']}")
    return done
