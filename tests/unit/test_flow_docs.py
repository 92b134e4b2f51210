"""The deployment forms describe each flow parameter with the library's own help text.

Prefect reads the descriptions from the flow's source without running it, so the flows hold
them as literal docstrings; this test keeps those equal to ``Config``'s and ``ScoringConfig``'s
help (``flows.params.args_doc``), the one source: a changed help text fails here until the
flow's docstring says the same."""

from __future__ import annotations

from pathlib import Path

import pytest

prefect = pytest.importorskip("prefect")

REPO = Path(__file__).resolve().parents[2]


def _flows():
    from flows import params
    from flows.promote import promote_sentiment
    from flows.rollback import rollback_champion_flow
    from flows.score import score_reviews
    from flows.sweep import sweep_sentiment
    from flows.train import train_sentiment
    from sentiment.config import Config
    from sentiment.scoring.config import ScoringConfig
    own = dict(preset=params.PRESET_HELP, overrides=params.OVERRIDES_HELP)
    return {
        "flows/train.py:train_sentiment": params.args_doc(
            train_sentiment.fn, Config, params.preset_value, promote=params.PROMOTE_HELP,
            train_processes=params.TRAIN_PROCESSES_HELP, **own),
        "flows/promote.py:promote_sentiment": params.args_doc(
            promote_sentiment.fn, Config, params.preset_value, version=params.VERSION_HELP, **own),
        "flows/rollback.py:rollback_champion_flow": params.args_doc(
            rollback_champion_flow.fn, Config, params.preset_value, to=params.TO_HELP,
            reason=params.REASON_HELP, **own),
        "flows/sweep.py:sweep_sentiment": params.args_doc(
            sweep_sentiment.fn, Config, params.preset_value, register_best=params.REGISTER_BEST_HELP,
            promote=params.PROMOTE_BEST_HELP, **own),
        "flows/score.py:score_reviews": params.args_doc(
            score_reviews.fn, ScoringConfig, params.field_default),
    }


@pytest.mark.parametrize("entrypoint", sorted(_flows()))
def test_deployment_form_says_what_the_library_says(entrypoint):
    from prefect.utilities.callables import parameter_schema_from_entrypoint
    path, name = entrypoint.split(":")
    schema = parameter_schema_from_entrypoint(f"{REPO / path}:{name}").model_dump_for_openapi()
    shown = {k: " ".join(v.get("description", "").split())
             for k, v in schema["properties"].items()}
    expected = {k: " ".join(v.split()) for k, v in _flows()[entrypoint].items()}
    assert shown == expected
