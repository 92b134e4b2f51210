"""Prefect flows: `train-sentiment` (flows/train.py) and `promote-sentiment` (flows/promote.py).

Deployed from prefect.yaml; `sentiment pipeline` (sentiment_cli/pipeline.py) runs the training
flow in-process.
"""
