"""Behavioural checks after CheckList (Ribeiro et al., 2020): a versioned suite of small
reviews in ``suite/`` (``suite``) and running a model over it (``checks``)."""
