"""The files a training run leaves in its folder, by name: what registration, evaluation and
the reports read back. A module of its own so readers need not import torch."""

METRICS = "metrics.json"                      # the run's summary: config, history, test metrics
TEST_PREDICTIONS = "test_predictions.parquet"  # text, label, prob (+ each part's) per test review
VALID_PREDICTIONS = "valid_predictions.parquet"  # label, prob of the best epoch per validation review
