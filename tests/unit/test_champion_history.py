"""Which version a rollback returns to by default (``champion.previous_holder``)."""

from __future__ import annotations

import pytest

pytest.importorskip("mlflow")


def _moves(*steps):
    from sentiment.tracking.names import PROMOTED, ROLLED_BACK
    kinds = {"p": PROMOTED, "r": ROLLED_BACK}
    return [{"from": f, "to": t, "kind": kinds[k]} for k, f, t in steps]


def test_rollbacks_unwind_promotions_one_at_a_time():
    from sentiment.tracking.champion import previous_holder
    moves = _moves(("p", None, 1), ("p", 1, 2), ("p", 2, 3))
    assert previous_holder(moves, 3) == 2
    moves += _moves(("r", 3, 2))
    assert previous_holder(moves, 2) == 1          # not back to 3
    moves += _moves(("r", 2, 1))
    assert previous_holder(moves, 1) is None       # the first champion
    moves += _moves(("p", 1, 4))
    assert previous_holder(moves, 4) == 1


def test_a_holder_set_by_hand_is_the_one_to_return_to():
    from sentiment.tracking.champion import previous_holder
    # Version 5 got the alias outside the gate; 6 was then promoted over it.
    moves = _moves(("p", None, 1), ("p", 1, 2), ("p", 5, 6))
    assert previous_holder(moves, 6) == 5
    # The alias now on a version no move mentions: back to the last recorded holder.
    assert previous_holder(moves, 9) == 6
