"""Tasks of the scoring flow: plan the job, score one shard, log the run."""

from __future__ import annotations

from typing import Optional

from prefect import task

from sentiment.scoring import batch
from sentiment.scoring.config import ScoringConfig
from sentiment.tracking import scoring_run
from tasks.options import NO_CACHING, TRANSIENT_RETRIES


# No retries: a bad input or a missing model fails the same way every time.
@task(name="plan-scoring", **NO_CACHING)
def plan_scoring(cfg: ScoringConfig, run_id: Optional[str] = None) -> dict:
    """Inputs, output, tracking store, the pinned model version and what is new, checked
    before any model loads (see `sentiment.scoring.batch.plan_job`)."""
    return batch.plan_job(cfg, run_id)


# The one task that receives data rather than paths: a shard's texts travel with it, so the
# workers of a remote Dask scheduler need no file system shared with the flow. Scoring is a
# pure function of the texts and the pinned model version, so a retry repeats it exactly.
@task(name="score-shard", **NO_CACHING, retries=1)
def score_shard(texts: list, model_uri: str, tracking_uri: str,
                timeout_s: Optional[float] = None, torch_threads: Optional[int] = None,
                batch_size: Optional[int] = None) -> dict:
    """Probabilities and errors of one shard, in order; which process scored it and how many
    times that process has loaded the model (once, when the per-process cache works)."""
    return batch.score_shard(texts, model_uri, tracking_uri, timeout_s, torch_threads,
                               batch_size)


@task(name="log-scoring-run", **NO_CACHING, **TRANSIENT_RETRIES)
def log_scoring_run(cfg: ScoringConfig, summary: dict, distribution: dict,
                    tags: Optional[dict[str, str]] = None) -> dict:
    """The job as one MLflow run: {run_id, experiment_id, tracking_uri}."""
    return scoring_run.log_scoring_run(cfg, summary, distribution, tags)
