"""One gate from every door: the pipeline's promotion task, the `promote-sentiment` flow and
`sentiment promote` look up the bag-of-words baseline tested on the candidate's test set and
apply the same margins, so each case ends in the same decision whichever door it came through.
"""

from __future__ import annotations

import contextlib
import io

import pytest

pytestmark = pytest.mark.slow

pytest.importorskip("mlflow")
prefect = pytest.importorskip("prefect")

TEST_SET = "test-set-fingerprint"
OTHER_SET = "another-test-set"

# (case, candidate accuracy, baseline accuracy or None, the baseline's test set,
#  min_lift_over_baseline, promoted?, words the reason must hold)
CASES = [
    ("below-baseline", 0.75, 0.80, TEST_SET, 0.0, False, "does not beat the bag-of-words"),
    ("above-baseline", 0.85, 0.80, TEST_SET, 0.0, True, "beats the bag-of-words baseline"),
    ("equal-is-not-better", 0.80, 0.80, TEST_SET, 0.0, False, "strictly better"),
    ("tolerated-loss", 0.79, 0.80, TEST_SET, -0.02, True, "loss of up to 0.0200 tolerated"),
    ("loss-beyond-tolerance", 0.77, 0.80, TEST_SET, -0.02, False, "does not beat"),
    ("baseline-elsewhere-only", 0.85, 0.80, OTHER_SET, 0.0, False, "no bag-of-words baseline"),
    ("no-baseline", 0.85, None, None, 0.0, False, "no bag-of-words baseline"),
    ("rule-off", 0.85, None, None, -1.0, True, "no champion yet"),
]
DOORS = ("pipeline", "flow", "cli")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A SQLite store with, per case and door, a candidate version (tags only, as registration
    leaves them) and the case's baseline version."""
    from sentiment.tracking.names import (
        BASELINE_ROLE,
        ROLE,
        VERSION_ACCURACY,
        VERSION_RUN_ID,
        VERSION_TEST_SET,
        format_accuracy,
    )
    from sentiment.tracking.store import connect, ensure_experiment
    uri = f"sqlite:///{tmp_path_factory.mktemp('doors') / 'mlflow.db'}"
    _, client = connect(uri)
    exp = ensure_experiment(client, "doors", uri)

    def version(name, acc, test_set, **tags):
        run = client.create_run(exp)
        client.set_terminated(run.info.run_id)
        try:
            client.create_registered_model(name)
        except Exception:
            pass
        all_tags = {VERSION_ACCURACY: format_accuracy(acc), VERSION_RUN_ID: run.info.run_id,
                    **({VERSION_TEST_SET: test_set} if test_set else {}), **tags}
        return int(client.create_model_version(name, source="file:///nowhere", run_id=run.info.run_id,
                                               tags=all_tags).version)

    for case, cand, base, base_set, *_ in CASES:
        for door in DOORS:
            version(f"m-{case}-{door}", cand, TEST_SET)
            if base is not None:
                version(f"b-{case}-{door}", base, base_set, **{ROLE: BASELINE_ROLE})
    return uri


def _cfg(uri, case, door, min_lift):
    from sentiment.config import Config
    return Config.from_preset("smoke", tracking_uri=uri, model_name=f"m-{case}-{door}",
                              baseline_model_name=f"b-{case}-{door}", min_accuracy=0.5,
                              min_improvement=0.0, min_lift_over_baseline=min_lift)


def _through(door, cfg) -> tuple[bool, str]:
    if door == "pipeline":  # what flows/train.py's promotion stage calls
        from tasks import promote_model
        d = promote_model.fn(cfg, 1)
        return d["promoted"], d["reason"]
    if door == "flow":
        from flows.promote import promote_sentiment
        d = promote_sentiment(version=1, preset="smoke", tracking_uri=cfg.tracking_uri,
                              model_name=cfg.model_name, min_accuracy=cfg.min_accuracy,
                              min_lift_over_baseline=cfg.min_lift_over_baseline,
                              overrides={"baseline_model_name": cfg.baseline_model_name})
        return d["promoted"], d["reason"]
    from sentiment_cli.main import main
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = main(["promote", "--version", "1", "--preset", "smoke", "--tracking-uri",
                   cfg.tracking_uri, "--model-name", cfg.model_name, "--baseline-model-name",
                   cfg.baseline_model_name, "--min-accuracy", str(cfg.min_accuracy),
                   "--min-lift-over-baseline", str(cfg.min_lift_over_baseline)])
    line = out.getvalue().strip()
    promoted = line.startswith("Version 1 promoted: ")
    assert promoted or line.startswith("Version 1 not promoted: "), line
    assert rc == (0 if promoted else 1), line  # the exit status says the verdict too
    return promoted, line.split(": ", 1)[1]


@pytest.mark.parametrize("case,cand,base,base_set,min_lift,expected,words",
                         CASES, ids=[c[0] for c in CASES])
def test_every_door_gives_the_same_decision(harness, store, case, cand, base, base_set,
                                            min_lift, expected, words):
    from mlflow import MlflowClient
    decisions = {door: _through(door, _cfg(store, case, door, min_lift)) for door in DOORS}
    assert len(set(decisions.values())) == 1, decisions  # same verdict, same reason
    promoted, reason = decisions["pipeline"]
    assert promoted is expected, reason
    assert words in reason, reason
    client = MlflowClient(tracking_uri=store, registry_uri=store)
    for door in DOORS:
        tags = client.get_model_version(f"m-{case}-{door}", "1").tags
        assert tags["promotion_decision"] == ("promoted" if expected else "rejected")
        assert tags["promotion_reason"] == reason
