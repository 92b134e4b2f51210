"""Prefect tasks: each one a decorator around one `sentiment` library call.

They exchange paths, run ids and small dicts, never tensors or models.
"""

from tasks.baseline import train_baseline
from tasks.champion import champion_history, rollback_champion
from tasks.evaluation import evaluate_model
from tasks.preflight import check_before_work
from tasks.probe import probe_registry
from tasks.promotion import promote_model
from tasks.registry import register_model
from tasks.scoring import log_scoring_run, plan_scoring, score_shard
from tasks.sweep import run_sweep
from tasks.tokenization import warm_token_cache
from tasks.training import train_model
from tasks.validation import validate_data

__all__ = ["probe_registry", "check_before_work", "validate_data", "warm_token_cache",
           "train_baseline", "train_model", "evaluate_model", "register_model", "promote_model",
           "plan_scoring", "score_shard", "log_scoring_run", "run_sweep", "champion_history",
           "rollback_champion"]
