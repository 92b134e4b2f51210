"""IMDB sentiment: a frozen BERT-family encoder, a bidirectional GRU head, and its pipeline.

Importing this package does nothing heavy: the submodules load torch and transformers.
"""

__version__ = "0.1.0"
