"""Drift: a small profile of a model's training data, and how incoming reviews compare with it
(plain numpy and scipy)."""
