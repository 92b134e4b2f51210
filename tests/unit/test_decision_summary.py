"""The gate's decision where a person looks first: the top of the version's description."""

from __future__ import annotations

from sentiment.gate import decide
from sentiment.tracking.promotion import decision_summary


def _record(**kw) -> dict:
    promoted, reason = decide(0.9180, None, 0.90, 0.0, 0.9145, 0.0)
    base = {"decision": "promoted" if promoted else "rejected", "reason": reason,
            "time": "2026-12-03T07:00:00+0000", "gate": "min_accuracy=0.9",
            "candidate_accuracy": "0.918", "test_set": "abc123", "champion": "none",
            "champion_accuracy": "", "champion_rescored": "false",
            "baseline_accuracy": "0.9145", "baseline_run_id": "r1"}
    return {**base, **kw}


def test_summary_leads_with_the_verdict_and_compares_on_one_test_set():
    text = decision_summary("imdb-sentiment", 4, _record(), 1, "run9")
    first = text.splitlines()[0]
    assert first.startswith("**Promoted**: `imdb-sentiment@champion` now points to version 4")
    assert "on test set `abc123`" in text
    assert "| candidate | version 4 | 0.9180 | |" in text
    assert "| baseline | bag-of-words, run `r1` | 0.9145 | +0.0035 |" in text
    # The reason names the baseline rule it applied, and the summary carries it whole.
    assert "beats the bag-of-words baseline's 0.9145 by +0.0035" in text
    assert "no champion yet" in text
    assert "`promotion/decision-1.json` in run `run9`" in text


def test_a_rejection_says_where_the_alias_stays():
    promoted, reason = decide(0.9100, 0.9150, 0.90, 0.0, 0.9000, 0.0)
    assert not promoted
    text = decision_summary("m", 5, _record(decision="rejected", reason=reason, champion="3",
                                            champion_accuracy="0.915",
                                            candidate_accuracy="0.91",
                                            champion_rescored="true"), 2, None)
    assert text.startswith("**Not promoted**: the `champion` alias stays on version 3")
    assert "| champion | version 3 (re-scored here) | 0.9150 | -0.0050 |" in text
    assert "does not beat the champion's 0.9150" in text
