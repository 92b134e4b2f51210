"""The behavioural suite run on a registered version, its results kept in the registry.

The first time a version meets the gate under a given suite, the model is loaded from the
registry and run over the suite (``sentiment.behaviour``); the failure rate of each test type
goes to the version's run as metrics and the cases as a table artifact, and the results onto
the version as tags, so the next decision (another door, a later candidate meeting this one as
champion) reads them instead of loading the model again.
"""

from __future__ import annotations

import json
import logging

from sentiment.tracking.names import (
    BEHAVIOUR_METRIC,
    BEHAVIOUR_TABLE,
    VERSION_BEHAVIOUR,
    VERSION_BEHAVIOUR_SUITE,
)

log = logging.getLogger(__name__)


def _first_line(e: Exception) -> str:
    return str(e).splitlines()[0] if str(e) else type(e).__name__


def _log_to_run(client, run_id: str, result: dict) -> None:
    import time

    import pandas as pd
    from mlflow.entities import Metric
    now = int(time.time() * 1000)
    metrics = [Metric(BEHAVIOUR_METRIC.format(test=t), r, now, 0) for t, r in result["rates"].items()]
    metrics.append(Metric("behaviour_failure_rate", result["failure_rate"], now, 0))
    client.log_batch(run_id, metrics=metrics)
    client.log_table(run_id, data=pd.DataFrame(result["rows"]), artifact_file=BEHAVIOUR_TABLE)


def behaviour_of(client, store: str, name: str, mv) -> dict:
    """The version's behavioural results under the current suite: {suite, rates, counts,
    examples, failure_rate}, or {suite, error} when the model cannot be loaded or run."""
    from sentiment.behaviour.checks import run_suite
    from sentiment.behaviour.suite import load_suite
    from sentiment.tracking.model_uri import load_model_uri
    suite = load_suite()
    tags = mv.tags or {}
    if tags.get(VERSION_BEHAVIOUR_SUITE) == suite.version and tags.get(VERSION_BEHAVIOUR):
        try:
            return json.loads(tags[VERSION_BEHAVIOUR])
        except ValueError:
            pass  # unreadable: run it again
    try:
        model = load_model_uri(f"models:/{name}/{mv.version}", store)
        result = run_suite(model.predict_proba, suite)
    except Exception as e:
        return {"suite": suite.version, "error": f"version {mv.version}: {_first_line(e)}"}
    if mv.run_id:
        try:
            _log_to_run(client, mv.run_id, result)
        except Exception as e:  # the tags below are what the gate reads
            log.warning("could not log the behavioural results to run %s: %s", mv.run_id, e)
    kept = {k: v for k, v in result.items() if k != "rows"}
    client.set_model_version_tag(name, str(mv.version), VERSION_BEHAVIOUR, json.dumps(kept))
    client.set_model_version_tag(name, str(mv.version), VERSION_BEHAVIOUR_SUITE, suite.version)
    return kept
