"""Slices of the test set, the gate's worst-slice rule, and the expected calibration error."""

from __future__ import annotations

import numpy as np
import pytest

from sentiment import gate
from sentiment.evaluation.metrics import classification_metrics, expected_calibration_error
from sentiment.evaluation.slices import slice_masks, slice_table

TEXTS = ["Good.", "Not good at all.", "Great cast but a dull film overall sadly.",
         "I loved it, it was funny and warm and clever and touching and long enough."]


def test_slices_pick_the_reviews_they_name():
    masks = slice_masks(TEXTS, token_counts=[2, 4, 8, 17], max_length=10)
    assert masks["negation"].tolist() == [False, True, False, False]
    assert masks["contrast"].tolist() == [False, False, True, False]
    assert masks["cut"].tolist() == [False, False, False, True]  # 17 > 10 - 2 tokens
    assert (masks["cut"] ^ masks["whole"]).all()
    quartiles = np.vstack([masks[f"length_q{i}"] for i in range(1, 5)])
    assert (quartiles.sum(axis=0) == 1).all()          # every review in exactly one quartile
    assert masks["length_q1"][0] and masks["length_q4"][3]
    assert "cut" not in slice_masks(TEXTS)              # no tokenizer, no cut/whole


def test_slice_table_is_accuracy_on_each_slice():
    masks = slice_masks(TEXTS, [2, 4, 8, 17], 10)
    rows = {r["slice"]: r for r in slice_table([1, 0, 0, 1], [0.9, 0.8, 0.2, 0.3], masks)}
    assert rows["negation"] == {"slice": "negation", "n": 1, "accuracy": 0.0}
    assert rows["whole"]["accuracy"] == pytest.approx(2 / 3)
    assert rows["cut"]["accuracy"] == 0.0


def test_worst_slice_rule_refuses_a_loss_the_average_hides():
    rows = gate.slice_rows({"length_q4": 0.80, "negation": 0.91},
                           {"length_q4": 0.88, "negation": 0.85})
    ok, reason = gate.decide(0.92, 0.90, 0.85, 0.0, None, -1.0, None, 1.0, rows, 0.05)
    assert not ok and "length_q4, is 0.8000 against 0.8800 (-0.0800" in reason
    assert gate.decide(0.92, 0.90, 0.85, 0.0, None, -1.0, None, 1.0, rows, 0.1)[0]
    assert gate.decide(0.92, 0.90, 0.85, 0.0, None, -1.0, None, 1.0, rows)[0]  # off
    # No champion slices on these reviews: the rule cannot apply.
    alone = gate.slice_rows({"length_q4": 0.5}, None)
    ok, reason = gate.decide(0.92, None, 0.85, 0.0, None, -1.0, None, 1.0, alone, 0.0)
    assert ok and "slice rule not applied" in reason
    md = gate.slices_markdown(rows, "", 0.05)
    assert "| length_q4 | 0.8000 | 0.8800 | -0.0800 |" in md


def test_expected_calibration_error():
    # Bins of 0.1: P 0.1 (neg), 0.9 (pos), 0.6 (pos), 0.7 (neg): gaps .1, .1, .4, .7 over 4.
    assert expected_calibration_error([0, 1, 1, 0], [0.1, 0.9, 0.6, 0.7]) == pytest.approx(0.325)
    assert expected_calibration_error([0, 1] * 50, [0.5] * 100) == pytest.approx(0.0)
    assert classification_metrics([0, 1, 1, 0], [0.1, 0.9, 0.6, 0.7])["ece"] == \
        pytest.approx(0.325)
