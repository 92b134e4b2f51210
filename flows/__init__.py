"""Prefect flows: `train-sentiment` (flows/train.py) and `promote-sentiment` (flows/promote.py).

Deployed from prefect.yaml; `sentiment pipeline` runs the training flow in-process.
"""
