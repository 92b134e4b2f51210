"""The batch-scoring flow `score-reviews`: plan (inputs, output, store, model version pinned)
→ score the shards on Dask (the subflow `score-shards`: read → one task per shard → gather in
input order → write parquet atomically) → log the MLflow run → publish the summary artifact.

The shards run on a `DaskTaskRunner` chosen at run time from the parameters: a local cluster
of `workers` processes (one thread each, the cores shared out as torch threads), or the
running scheduler at `scheduler`. A flow's task runner is fixed when it starts, so the
sharded part is a subflow given its runner with `with_options(task_runner=...)`.
"""

from __future__ import annotations

import importlib.util
import time
from collections import Counter
from typing import Optional

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.states import Failed

from flows.failure import failed
from flows.mlflow_link import mlflow_run_url
from flows.run_tags import flow_run_tags
from sentiment.scoring import batch
from sentiment.scoring.config import ScoringConfig
from sentiment.tracking.store import StoreUnavailable
from tasks import log_scoring_run, plan_scoring, score_shard, write_scores

SCORES_KEY = "sentiment-scores"  # artifact key: lowercase letters, digits and dashes only


def dask_runner(cfg: ScoringConfig):
    """The task runner of the shards: the scheduler at `cfg.scheduler`, or a local cluster
    (loopback only) of `cfg.workers` single-threaded processes, started and stopped with the
    subflow."""
    from prefect_dask import DaskTaskRunner
    if cfg.scheduler:
        return DaskTaskRunner(address=cfg.scheduler)
    # The dashboard needs bokeh; without it Dask would only warn that it is missing.
    dashboard = "127.0.0.1:8787" if importlib.util.find_spec("bokeh") else None
    # Worker processes report their task runs to this flow's Prefect API. Without its address
    # (Prefect's temporary local API, or a test's, lives in this process's settings, not in
    # the environment) each worker would start a temporary API of its own.
    env = {"PREFECT_API_URL": prefect_api_url()}
    return DaskTaskRunner(cluster_class="distributed.LocalCluster",
                          cluster_kwargs={"n_workers": cfg.workers, "threads_per_worker": 1,
                                          "processes": True, "host": "127.0.0.1",
                                          "dashboard_address": dashboard, "env": env})


def prefect_api_url() -> str:
    """The API this flow run reports to (inside a flow run)."""
    from prefect.client.orchestration import get_client
    return str(get_client(sync_client=True).api_url).rstrip("/")


@flow(name="score-shards", persist_result=False)
def score_shards(cfg: ScoringConfig, job: dict) -> dict:
    """Score the planned input in shards, one task each, and write the scores file."""
    t = time.perf_counter()
    rows = batch.read_job_inputs(cfg, job)
    texts = rows["text"].tolist()
    threads = cfg.torch_threads if cfg.scheduler else \
        batch.threads_per_worker(cfg.workers, cfg.torch_threads)
    futures = [score_shard.submit(texts[a:b], job["model_uri"], job["tracking_uri"],
                                  cfg.probe_timeout_s, threads, cfg.batch_size)
               for a, b in batch.shard_bounds(len(texts), cfg.shard_rows)]
    shards = [f.result() for f in futures]  # in submission order: the input's
    table = batch.assemble(rows.drop(columns="text"), shards, job["model_version"],
                             cfg.threshold)
    output = write_scores(table, job["output"], cfg.overwrite)
    seconds = time.perf_counter() - t
    loads: dict[str, int] = {}
    for s in shards:
        loads[s["process"]] = max(loads.get(s["process"], 0), s["model_loads"])
    errors = Counter(e for e in table["error"].dropna())
    return {"rows": len(table), "errors": int(sum(errors.values())),
            "error_counts": dict(errors), "output": output, "seconds": round(seconds, 3),
            "rows_per_s": round(len(table) / seconds, 2) if seconds > 0 else 0.0,
            "shards": len(shards), "model_loads": loads,
            "distribution": batch.distribution(table["probability"].dropna().tolist())}


# Nothing persisted, a failure returned as a state (flows/failure.py).
@flow(name="score-reviews", log_prints=True, persist_result=False)
def score_reviews(
    input: str,
    output: str,
    model: Optional[str] = None,
    tracking_uri: Optional[str] = None,
    workers: Optional[int] = None,
    scheduler: Optional[str] = None,
    text_column: Optional[str] = None,
    id_column: Optional[str] = None,
    overwrite: Optional[bool] = None,
    shard_rows: Optional[int] = None,
    batch_size: Optional[int] = None,
    torch_threads: Optional[int] = None,
    experiment: Optional[str] = None,
) -> dict:
    """Score reviews with a registered model on Dask; returns the summary (rows, errors,
    output, model_uri, model_version, rows_per_s, mlflow_run_id, ...).

    Every parameter is the `sentiment.scoring.config.ScoringConfig` field of that name; left
    empty, it keeps that field's default. The parameters' descriptions are those fields' help.

    Args:
        input: Reviews to score: a parquet, CSV or JSON-lines file (.parquet, .csv, .jsonl), or
            a folder of them (read in file-name order).
        output: Where the scores go: a path ending in .parquet is written as given; any other
            path is a folder in which each run writes its own scores-<UTC time>-<id>.parquet.
        model: MLflow model URI: models:/NAME@ALIAS, models:/NAME/VERSION or runs:/RUN_ID/model.
            An alias is resolved to its version once, when the job starts. Empty:
            models:/imdb-sentiment@champion.
        tracking_uri: MLflow tracking URI (None: $MLFLOW_TRACKING_URI or the local SQLite store
            under mlflow/). Empty: None.
        workers: Dask worker processes of the local cluster, one thread each (ignored with a
            scheduler). Empty: 1.
        scheduler: Address of a running Dask scheduler, e.g. tcp://10.0.0.5:8786 (None: a local
            cluster of `workers` processes, started and stopped by the job). Empty: None.
        text_column: Column holding the review texts. Empty: text.
        id_column: Column copied beside each score to identify its row (None: the row number, in
            a column `row`). Empty: None.
        overwrite: Replace an existing output file (a .parquet output only). Empty: False.
        shard_rows: Reviews per shard: one Prefect task each. Empty: 1000.
        batch_size: Reviews per forward pass (None: the model's default, eval_batch_size of
            sentiment.config). Empty: None.
        torch_threads: Torch CPU threads per worker (None: the machine's cores // workers on a
            local cluster; torch's default on a scheduler's workers). Empty: None.
        experiment: MLflow experiment of the scoring runs. Empty: imdb-sentiment-scoring.
    """
    params = locals()  # first statement: exactly the parameters
    try:
        return stages(ScoringConfig.build(**params))
    except (ValueError, StoreUnavailable) as e:
        # A bad input, output, model URI or store: the one-line message says it all.
        get_run_logger().error(f"Stopped: {e}")
        return Failed(message=f"Flow run failed: {type(e).__name__}: {e}", data=e)
    except Exception as e:
        return failed(e)


def stages(cfg: ScoringConfig) -> dict:
    """The flow's stages, in order; the summary of the run."""
    # Inputs, output, store and the model version first: a mistake fails in seconds, in one
    # line, before a cluster starts or a model loads.
    job = plan_scoring(cfg)
    scored = score_shards.with_options(task_runner=dask_runner(cfg))(cfg, job)
    summary = {
        "rows": scored["rows"], "errors": scored["errors"], "output": scored["output"],
        "model_uri": job["model_uri"], "model_version": job["model_version"],
        "model_name": job["model_name"], "model_requested": job["requested"],
        "rows_per_s": scored["rows_per_s"], "seconds": scored["seconds"],
        "input": cfg.input, "workers": None if cfg.scheduler else cfg.workers,
        "scheduler": cfg.scheduler, "shards": scored["shards"],
        "model_loads": scored["model_loads"], "error_counts": scored["error_counts"],
        "distribution": scored["distribution"], "tracking_uri": job["tracking_uri"]}
    run = log_scoring_run(cfg, summary, scored["distribution"], tags=flow_run_tags())
    summary["mlflow_run_id"] = run["run_id"]
    summary["mlflow_run_url"] = mlflow_run_url(run["tracking_uri"], run["experiment_id"],
                                               run["run_id"])
    publish_scores(summary)
    logger = get_run_logger()
    for line in scoring_summary_lines(summary):
        logger.info(line)
    return summary


def scoring_summary_lines(s: dict) -> list[str]:
    """What a scoring run came to, one fact a line (the run's logs, `sentiment score`)."""
    version = f"version {s['model_version']} " if s["model_version"] is not None else ""
    where = f"scheduler {s['scheduler']}" if s["scheduler"] else f"{s['workers']} local worker(s)"
    return [
        f"Rows: {s['rows']} ({s['errors']} not scorable, kept with an error)",
        f"Speed: {s['rows_per_s']:.1f} rows/s ({s['seconds']:.1f} s on {where})",
        f"Model: {version}{s['model_uri']} (asked for {s['model_requested']})",
        f"Output: {s['output']}",
        f"MLflow run: {s['mlflow_run_url']}",
    ]


def publish_scores(s: dict) -> None:
    d = s["distribution"]
    rows = [("rows", s["rows"]), ("errors", s["errors"]), ("rows/s", s["rows_per_s"]),
            ("seconds", s["seconds"]), ("model", s["model_uri"]),
            ("model version", s["model_version"]), ("output", f"`{s['output']}`"),
            ("MLflow run", f"[{s['mlflow_run_id']}]({s['mlflow_run_url']})")]
    if d.get("scored"):
        rows += [("mean score", f"{d['mean']:.4f}"), ("positive share", f"{d['positive_share']:.4f}"),
                 ("quantiles p05 / p25 / p50 / p75 / p95",
                  " / ".join(f"{d[k]:.3f}" for k in ("p05", "p25", "p50", "p75", "p95")))]
    table = "\n".join(["| | |", "| --- | --- |", *(f"| {k} | {v} |" for k, v in rows)])
    hist = d.get("histogram") or {}
    if hist.get("counts"):
        edges = hist["edges"]
        bins = "\n".join(f"| {edges[i]:.1f}-{edges[i + 1]:.1f} | {c} |"
                         for i, c in enumerate(hist["counts"]))
        table += "\n\n**Score histogram**\n\n| P(positive) | reviews |\n| --- | --- |\n" + bins
    if s["error_counts"]:
        table += "\n\n**Rows not scored**\n\n| error | rows |\n| --- | --- |\n" + "\n".join(
            f"| {k} | {v} |" for k, v in sorted(s["error_counts"].items()))
    create_markdown_artifact(markdown=f"# Scores\n\n{table}\n", key=SCORES_KEY,
                             description=f"{s['rows']} reviews scored with {s['model_uri']}")
