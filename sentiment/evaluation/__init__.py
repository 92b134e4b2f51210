"""Evaluation from labels and P(positive): the test metrics, and the report files (plots, the
confidently wrong reviews, the model card).
"""
