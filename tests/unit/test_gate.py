"""The pure gate: margins mean the same for the champion and the baseline, and the reason
names every rule that applied."""

from __future__ import annotations

import pytest

from sentiment.config import Config
from sentiment.gate import decide
from sentiment.gate.decision import BASELINE_RULE_OFF, beats, requirement


@pytest.mark.parametrize("gain,margin,ok", [
    (0.001, 0.0, True), (0.0, 0.0, False), (-0.001, 0.0, False),     # 0: strictly better
    (0.01, 0.01, True), (0.009, 0.01, False),                        # positive: at least that
    (-0.01, -0.01, True), (-0.011, -0.01, False), (0.0, -0.01, True),  # negative: a tolerated loss
])
def test_one_meaning_of_a_margin(gain, margin, ok):
    assert beats(gain, margin) is ok


def test_champion_and_baseline_margins_agree():
    # The same gain against the same margin gives the same verdict whichever model it is over.
    for gain, margin in [(-0.005, -0.01), (-0.02, -0.01), (0.0, 0.0), (0.02, 0.01)]:
        over_champion, _ = decide(0.80 + gain, 0.80, 0.5, margin)
        over_baseline, _ = decide(0.80 + gain, None, 0.5, 0.0, 0.80, margin)
        assert over_champion is over_baseline is beats(gain, margin)


def test_negative_margin_tolerates_a_loss_to_the_champion():
    ok, reason = decide(0.89, 0.895, 0.85, -0.01)
    assert ok, reason
    assert "loss of up to 0.0100 tolerated" in reason
    assert not decide(0.88, 0.895, 0.85, -0.01)[0]


def test_missing_baseline_refuses_unless_the_rule_is_off():
    ok, reason = decide(0.9, None, 0.5, 0.0, None, 0.0)
    assert not ok and "no bag-of-words baseline" in reason
    assert decide(0.9, None, 0.5, 0.0, None, BASELINE_RULE_OFF)[0]


def test_reason_names_every_rule_that_applied():
    ok, reason = decide(0.90, 0.88, 0.85, 0.0, 0.86, 0.0)
    assert ok
    assert "0.9000 >= minimum 0.8500" in reason
    assert "beats the bag-of-words baseline's 0.8600 by +0.0400" in reason
    assert "beats the champion's 0.8800 by +0.0200" in reason
    ok, reason = decide(0.882, None, 0.88, 0.0, 0.865, 0.0)
    assert ok and "baseline's 0.8650" in reason and "no champion yet" in reason


def test_requirement_words():
    assert requirement(0.0) == "> 0 (strictly better)"
    assert requirement(0.01) == ">= +0.0100"
    assert "tolerated" in requirement(-0.01)


@pytest.mark.parametrize("field", ["min_improvement", "min_lift_over_baseline"])
@pytest.mark.parametrize("value", [-1.5, 1.5])
def test_config_bounds_both_margins(field, value):
    with pytest.raises(ValueError, match=f"{field} must be in \\[-1, 1\\]"):
        Config(**{field: value})
