"""Champion history and rollback on a real store: three versions promoted one after the other,
`sentiment champion history` listing every move with its reason, a rollback moving the alias
back (alone, and two at once), and a rollback to a version whose files were changed refused.

The session's registered smoke model (random-init tiny encoder) is the only trained model: the
versions here are further versions of its logged model (registry work only), each test on a
registered model of its own.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import SCORING_MODEL

pytest.importorskip("mlflow")


@pytest.fixture(scope="module")
def store(scoring_store):
    """The session's registered smoke model (conftest.scoring_store): its version is copied
    into further versions of other registered models, so no test trains."""
    from mlflow import MlflowClient

    from sentiment.config import Config
    from sentiment.tracking.behaviour_run import behaviour_of
    uri = scoring_store.uri
    client = MlflowClient(uri, uri)
    name, version = SCORING_MODEL, str(scoring_store.version)
    # The suite's results on the version, so the copies below carry them and the gate
    # loads no model for them (test_candidate_refused_on_behaviour_alone runs it afresh).
    behaviour_of(client, uri, name, client.get_model_version(name, version))
    cfg = Config.from_preset("smoke", tracking_uri=uri, progress=False, num_threads=1)
    return SimpleNamespace(uri=uri, cfg=cfg, client=client,
                           first=client.get_model_version(name, version))


def _three_promoted(store, name: str):
    """Versions 1, 2, 3 of `name` (the trained model, tagged 0.60, 0.70, 0.80 on one test set),
    each promoted by the gate in turn: moves none→1, 1→2, 2→3."""
    from sentiment.tracking import promotion
    from sentiment.tracking.names import VERSION_ACCURACY
    src = store.first
    store.client.create_registered_model(name)
    for acc in (0.6, 0.7, 0.8):
        tags = {**src.tags, VERSION_ACCURACY: repr(acc)}
        v = store.client.create_model_version(name, source=src.source, run_id=src.run_id,
                                              model_id=src.model_id, tags=tags).version
        d = promotion.promote(_cfg(store, name), int(v))
        assert d["promoted"], d["reason"]
    return _cfg(store, name)


def _cfg(store, name):
    return store.cfg.replace(model_name=name, min_accuracy=0.5, min_lift_over_baseline=-1.0)


def _cli(store, name, *args) -> SimpleNamespace:
    """`sentiment champion ...` in this process (a subprocess would only add its start-up)."""
    from sentiment_cli.main import main
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(["champion", *args, "--preset", "smoke", "--tracking-uri", store.uri,
                   "--model-name", name])
    return SimpleNamespace(returncode=rc, stdout=out.getvalue(), stderr=err.getvalue())


def _moves(store, name):
    from sentiment.tracking.champion import history
    return [(m["from"], m["to"], m["kind"]) for m in history(store.client, name)]


def test_history_lists_every_move_and_rollback_moves_the_alias_back(store):
    from sentiment.tracking.champion import HISTORY_HEADING, show
    cfg = _three_promoted(store, "back")
    out = _cli(store, "back", "history", "--json")
    assert out.returncode == 0, out.stderr
    moves = json.loads(out.stdout)
    assert [(m["from"], m["to"], m["kind"]) for m in moves] == [
        (None, 1, "promoted"), (1, 2, "promoted"), (2, 3, "promoted")]
    assert all("beats" in m["reason"] or "no champion yet" in m["reason"] for m in moves)
    assert all(m["by"] and m["time"] for m in moves)
    # The same history on the registered model's page, newest first.
    page = store.client.get_registered_model("back").description
    assert HISTORY_HEADING in page
    rows = [line for line in page.splitlines() if line.startswith("| 20")]
    assert [r.split(" | ")[1:3] for r in rows] == [["2", "3"], ["1", "2"], ["–", "1"]]

    out = _cli(store, "back", "rollback", "--reason", "v3 mislabels sarcasm", "--json")
    assert out.returncode == 0, out.stderr
    done = json.loads(out.stdout)
    assert (done["from"]["version"], done["to"]["version"]) == (3, 2)
    assert done["to"]["accuracy"] == pytest.approx(0.7)  # the target's numbers, no gate run
    assert _holders(store, "back") == [2]
    assert _moves(store, "back")[-1] == (3, 2, "rolled back")
    found = show(cfg)
    assert found["version"] == 2 and "v3 mislabels sarcasm" in found["decision"]["reason"]
    assert found["rollback_target"] == 1  # the champion before version 2's promotion
    assert "| 3 | 2 | rolled back |" in store.client.get_registered_model("back").description
    # A name the registry does not know is an error, not an empty history.
    unknown = _cli(store, "no-such-model", "history")
    assert unknown.returncode == 2 and "unknown registered model 'no-such-model'" in unknown.stderr


def _holders(store, name):
    versions = store.client.search_model_versions(f"name = '{name}'")
    return [int(v.version) for v in versions
            if "champion" in (store.client.get_model_version(name, v.version).aliases or [])]


def test_two_rollbacks_at_once_leave_one_champion_and_both_decisions(store):
    import threading

    from sentiment.tracking.champion import history, rollback
    cfg = _three_promoted(store, "race")
    errors = []

    def go(i):
        try:
            rollback(cfg, reason=f"operator {i}")
        except Exception as e:  # the test fails below, naming it
            errors.append(e)
    threads = [threading.Thread(target=go, args=(i,)) for i in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    assert not errors, errors
    # Serialised by the promotion lock: each rolled back one promotion, 3→2 then 2→1.
    assert _moves(store, "race")[-2:] == [(3, 2, "rolled back"), (2, 1, "rolled back")]
    assert _holders(store, "race") == [1]
    reasons = [m["reason"] for m in history(store.client, "race")[-2:]]
    assert any("operator 1" in r for r in reasons) and any("operator 2" in r for r in reasons)


def test_rollback_to_a_tampered_version_is_refused(store):
    from sentiment.tracking.champion import RollbackRefused, rollback
    cfg = _three_promoted(store, "tamper")
    where = store.client.get_model_version_download_uri(SCORING_MODEL, store.first.version)
    if where.startswith("models:/"):
        where = store.client.get_logged_model(where.split("/")[1]).artifact_location
    files = Path(where.removeprefix("file://"))
    weights = next(p for p in files.rglob("*.safetensors"))
    original = weights.read_bytes()
    try:
        weights.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
        with pytest.raises(RollbackRefused, match="differ from the checksums.*safetensors changed"):
            rollback(cfg, reason="try the old one")
    finally:
        weights.write_bytes(original)
    assert _holders(store, "tamper") == [3]
    tags = store.client.get_model_version("tamper", "2").tags
    assert tags["promotion_decision"] == "rollback refused"  # the refusal is recorded too


def test_candidate_refused_on_behaviour_alone(store):
    """A version every accuracy rule lets through (no minimum, no baseline rule, no champion)
    is refused by the behavioural rule alone; its run gets the failure rates and the cases."""
    from sentiment.tracking import promotion
    from sentiment.tracking.names import BEHAVIOUR_TABLE
    src = store.first
    store.client.create_registered_model("behave")
    fresh = {k: v for k, v in src.tags.items() if not k.startswith("behaviour.")}
    v = int(store.client.create_model_version("behave", source=src.source, run_id=src.run_id,
                                              model_id=src.model_id, tags=fresh).version)
    strict = _cfg(store, "behave").replace(min_accuracy=0.0, max_behaviour_failure_rate=0.0)
    d = promotion.promote(strict, v)
    rates = d["compared"]["behaviour"]["candidate"]["rates"]
    failing = [t for t, r in rates.items() if r > 0]
    assert failing, "the barely trained smoke model passes every behavioural case"
    assert not d["promoted"]
    assert "no champion yet, but it fails more than 0% of the behavioural cases" in d["reason"]
    assert all(t in d["reason"] for t in failing) and "e.g. " in d["reason"]
    assert "| test type | candidate failed | champion failed |" in d["markdown"]
    run = store.client.get_run(src.run_id)
    assert run.data.metrics[f"behaviour_{failing[0]}_failure_rate"] == pytest.approx(
        rates[failing[0]])
    assert BEHAVIOUR_TABLE.split("/")[1] in [
        Path(a.path).name for a in store.client.list_artifacts(src.run_id, "behaviour")]
    # The same version with the rule off: promoted, the results read back from its tags.
    d = promotion.promote(strict.replace(max_behaviour_failure_rate=1.0), v)
    assert d["promoted"], d["reason"]
    assert d["compared"]["behaviour"]["candidate"]["rates"] == rates
