"""The behavioural suite (sentiment/behaviour) and the gate's behavioural rule."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from sentiment import gate
from sentiment.behaviour.checks import run_suite
from sentiment.behaviour.suite import KINDS, SUITE_DIR, load_suite


def test_suite_holds_every_kind_of_test_within_its_size():
    suite = load_suite()
    assert 100 <= len(suite.cases) <= 300
    kinds = {c.kind for c in suite.cases}
    assert kinds == set(KINDS)
    for test in ("mft_clear", "mft_negation", "mft_contrast", "mft_intensifier", "inv_names",
                 "inv_titles", "inv_typos", "inv_neutral", "dir_negative", "dir_positive"):
        assert test in suite.types()
    # An edit that changes nothing would test nothing.
    assert all(c.edited != c.text for c in suite.cases if c.kind != "mft")
    assert {c.label for c in suite.cases if c.kind == "mft"} == {0, 1}


def test_suite_version_follows_its_files(tmp_path):
    copy = tmp_path / "suite"
    shutil.copytree(SUITE_DIR, copy)
    before = load_suite(copy).version
    with open(copy / "minimum_functionality.jsonl", "a") as f:
        f.write(json.dumps({"test": "mft_clear", "text": "Superb.", "label": 1}) + "\n")
    after = load_suite(copy)
    assert after.version != before and len(after.cases) == len(load_suite().cases) + 1


def test_malformed_suite_is_refused_in_one_line(tmp_path):
    copy = tmp_path / "suite"
    shutil.copytree(SUITE_DIR, copy)
    (copy / "templates.json").write_text('{"words": {}, "templates": [{"test": "mft_clear", '
                                         '"template": "The {thing} was fine.", "label": 1}]}')
    with pytest.raises(ValueError, match="unknown word lists \\['thing'\\]"):
        load_suite(copy)


def test_always_positive_model_fails_exactly_the_negative_cases():
    suite = load_suite()
    res = run_suite(lambda texts: np.full(len(texts), 0.9), suite)
    for test in suite.types():
        cases = [c for c in suite.cases if c.test == test]
        if test.startswith("mft"):
            expected = sum(c.label == 0 for c in cases) / len(cases)
        else:  # the label never changes and the probability never moves
            expected = 0.0
        assert res["rates"][test] == pytest.approx(expected), test
    assert "expected neg" in res["examples"]["mft_negation"][0]
    assert len(res["rows"]) == len(suite.cases)


def test_direction_and_invariance_failures_are_caught():
    suite = load_suite()

    def fickle(texts):  # swings on any appended sentence, either way, and on typos
        return np.array([0.2 if t.endswith(("hated it.", "I loved it.")) or "Hnaks" in t
                         else 0.8 for t in texts])
    res = run_suite(fickle, suite)
    assert res["rates"]["dir_negative"] == 0.0      # fell: the right way
    assert res["rates"]["dir_positive"] == 1.0      # fell: the wrong way
    assert 0 < res["rates"]["inv_typos"] < 1 and res["rates"]["inv_names"] == 0.0


BEHAVIOUR = {"suite": "1-x", "rates": {"mft_negation": 0.6, "inv_names": 0.1},
             "counts": {"mft_negation": [15, 25], "inv_names": [3, 30]},
             "examples": {"mft_negation": ["'not good' (P(pos) 0.90, expected neg)"]}}


def test_candidate_refused_on_behaviour_alone():
    # Every accuracy rule passes by a wide margin: only the behavioural rule can refuse it.
    ok, reason = gate.decide(0.95, 0.80, 0.85, 0.0, 0.82, 0.0, BEHAVIOUR, 0.5)
    assert not ok
    assert "beats the champion's 0.8000" in reason
    assert "mft_negation 60% (15/25)" in reason and "'not good'" in reason
    assert "inv_names" not in reason  # within the rule
    ok, reason = gate.decide(0.95, 0.80, 0.85, 0.0, 0.82, 0.0, BEHAVIOUR, 0.6)
    assert ok and "at most 60%" in reason
    assert gate.decide(0.95, 0.80, 0.85, 0.0, 0.82, 0.0, BEHAVIOUR)[0]  # rule off by default


def test_behaviour_that_could_not_run_refuses_only_when_the_rule_is_on():
    broken = {"suite": "1-x", "error": "version 3: cannot load"}
    ok, reason = gate.decide(0.95, None, 0.85, 0.0, None, -1.0, broken, 0.5)
    assert not ok and "could not run (version 3: cannot load)" in reason
    assert gate.decide(0.95, None, 0.85, 0.0, None, -1.0, broken, 1.0)[0]


def test_decision_table_shows_candidate_and_champion_per_test_type():
    champ = {"suite": "1-x", "rates": {"mft_negation": 0.2, "inv_names": 0.0},
             "counts": {"mft_negation": [5, 25], "inv_names": [0, 30]}}
    md = gate.behaviour_markdown(BEHAVIOUR, champ, 0.5)
    assert "| mft_negation | 60% (15/25) | 20% (5/25) |" in md
    assert "| inv_names | 10% (3/30) | 0% (0/30) |" in md
    assert "- mft_negation: 'not good'" in md
