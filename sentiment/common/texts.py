"""The one check every predictor makes of its input: a list of strings."""

from __future__ import annotations


def checked_texts(texts) -> list[str]:
    """`texts` as a list, refused in one line when an item is not a string (every predictor
    scores strings only; a number or None would otherwise be tokenized as garbage or crash)."""
    texts = list(texts)
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
    if bad:
        raise TypeError(f"texts must be strings; item(s) {bad[:5]} are not")
    return texts
