"""Prefect flows: `train-sentiment` (flows/train.py), `promote-sentiment` (flows/promote.py) and
`score-reviews` (flows/score.py).

Deployed from prefect.yaml; `sentiment pipeline` and `sentiment score` (sentiment_cli/) run the
training and the scoring flow in-process.
"""
