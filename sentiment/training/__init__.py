"""Training: the loop (bucketed batches, best-by-validation-loss checkpoint), where batch
features come from (the encoder-state cache), checkpoints and resume, optimizers, and each
run's own folder. Knows no MLflow: callers pass hooks.
"""
