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
from typing import Optional

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.states import Failed

from flows.failure import failed
from flows.mlflow_link import mlflow_run_url
from flows.run_tags import flow_run_tags
from sentiment.drift.compare import summary_line
from sentiment.drift.report import markdown as drift_markdown
from sentiment.scoring import batch, folder
from sentiment.scoring.config import ScoringConfig
from sentiment.tracking.store import StoreUnavailable
from tasks import log_scoring_run, plan_scoring, score_shard

SCORES_KEY = "sentiment-scores"  # artifact key: lowercase letters, digits and dashes only
DRIFT_KEY = "sentiment-drift"


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
    """Check the planned input (contract, drift), score it in shards, one task each, and write
    the scores: one file, or one per new input file with the manifest (folder output)."""
    threads = cfg.torch_threads if cfg.scheduler else \
        batch.threads_per_worker(cfg.workers, cfg.torch_threads)

    def submit(texts: list):
        return score_shard.submit(texts, job["model_uri"], job["tracking_uri"],
                                  cfg.probe_timeout_s, threads, cfg.batch_size).result
    if job["mode"] == "folder":
        return folder.score_folder(cfg, job, submit, report=get_run_logger().info)
    return batch.score_file_output(cfg, job, submit)


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
    rescore: Optional[bool] = None,
    on_bad_file: Optional[str] = None,
    drift: Optional[str] = None,
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
        output: Where the scores go: a path ending in .parquet is written as given (every input
            row, one file); any other path is a folder scored incrementally: each input file
            once per model version, into date=YYYY-MM-DD/<file>-<hash>-v<version>.parquet,
            recorded in its _manifest/.
        model: MLflow model URI: models:/NAME@ALIAS, models:/NAME/VERSION or
            runs:/RUN_ID/model. An alias is resolved to its version once, when the job starts.
            Empty: models:/imdb-sentiment@champion.
        tracking_uri: MLflow tracking URI (None: $MLFLOW_TRACKING_URI or the local SQLite store
            under mlflow/). Empty: None.
        workers: Dask worker processes of the local cluster, one thread each (ignored with a
            scheduler). Empty: 1.
        scheduler: Address of a running Dask scheduler, e.g. tcp://10.0.0.5:8786 (None: a local
            cluster of `workers` processes, started and stopped by the job). Empty: None.
        text_column: Column holding the review texts. Empty: text.
        id_column: Column copied beside each score to identify its row (None: the row number,
            in a column `row`). Empty: None.
        overwrite: Replace an existing output file (a .parquet output only). Empty: False.
        rescore: Folder output: score again every input file that this model version has not
            scored yet, even if another version has (after a promotion). Empty: False.
        on_bad_file: An input file that cannot be read or decoded: `skip` it (recorded as
            failed in the manifest, the others scored) or `stop` the run before any scoring.
            Empty: skip.
        drift: Drift against the model's training profile: `warn` (report it, score anyway) or
            `fail` (stop before scoring on input drift; fail the run after scoring on score
            drift). Empty: warn.
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


def stages(cfg: ScoringConfig):
    """The flow's stages, in order; the summary of the run (or a Failed state, when the scores
    drift and `drift` is `fail`)."""
    # Inputs, output, store, the model version and what is new first: a mistake fails in
    # seconds, in one line, before a cluster starts or a model loads.
    job = plan_scoring(cfg, run_id=current_flow_run_id())
    base = {"model_uri": job["model_uri"], "model_version": job["model_version"],
            "model_name": job["model_name"], "model_requested": job["requested"],
            "input": cfg.input, "output": job["output"], "mode": job["mode"],
            "workers": None if cfg.scheduler else cfg.workers, "scheduler": cfg.scheduler,
            "tracking_uri": job["tracking_uri"], "skipped": job.get("done", [])}
    logger = get_run_logger()
    if job["mode"] == "folder" and not job["todo"]:
        summary = {**base, **nothing_scored(), "nothing_new": True}
        publish_scores(summary)
        for line in scoring_summary_lines(summary):
            logger.info(line)
        return summary
    scored = score_shards.with_options(task_runner=dask_runner(cfg))(cfg, job)
    summary = {**base, **scored, "nothing_new": False,
               "drift_line": summary_line(scored["drift"])}
    if job["mode"] == "file":
        summary["output"] = scored["files"][0]["output"]
    run = log_scoring_run(cfg, summary, scored["distribution"], tags=flow_run_tags())
    summary["mlflow_run_id"] = run["run_id"]
    summary["mlflow_run_url"] = mlflow_run_url(run["tracking_uri"], run["experiment_id"],
                                               run["run_id"])
    publish_scores(summary)
    publish_drift(summary)
    for line in scoring_summary_lines(summary):
        logger.info(line)
    drifted = summary["drift"].get("prediction", {}).get("drifted")
    if cfg.drift == "fail" and drifted:
        message = (f"the scores drift from the validation split's ({', '.join(drifted)}; "
                   f"drift=fail); they were written: {summary['drift_line']}")
        logger.error(f"Stopped: {message}")
        return Failed(message=message, data=summary)
    return summary


def current_flow_run_id() -> str | None:
    from prefect.context import FlowRunContext
    ctx = FlowRunContext.get()
    return str(ctx.flow_run.id) if ctx and ctx.flow_run else None


def nothing_scored() -> dict:
    return {"files": [], "failed": [], "busy": [], "adopted": [], "rows": 0, "errors": 0,
            "error_counts": {}, "seconds": 0.0, "rows_per_s": 0.0, "shards": 0,
            "model_loads": {}, "contract": [], "warnings": [],
            "drift": {"setting": None, "input": {"checked": False, "reason": "nothing new"}},
            "distribution": {"scored": 0, "histogram": {"edges": [], "counts": []}},
            "drift_line": "Drift: not checked (nothing new)", "mlflow_run_id": None,
            "mlflow_run_url": None}


def scoring_summary_lines(s: dict) -> list[str]:
    """What a scoring run came to, one fact a line (the run's logs, `sentiment score`)."""
    version = f"version {s['model_version']} " if s["model_version"] is not None else ""
    where = f"scheduler {s['scheduler']}" if s["scheduler"] else f"{s['workers']} local worker(s)"
    model = f"Model: {version}{s['model_uri']} (asked for {s['model_requested']})"
    if s.get("nothing_new"):
        return [f"Nothing new: {len(s['skipped'])} input file(s) in {s['input']}, all scored "
                f"already (manifest in {s['output']}); nothing to do", model]
    lines = [f"Rows: {s['rows']} ({s['errors']} not scorable, kept with an error)"]
    if s["mode"] == "folder":
        lines.append(f"Files: {len(s['files'])} scored, {len(s['adopted'])} finished from an "
                     f"earlier run, {len(s['skipped'])} already scored, {len(s['busy'])} left to "
                     f"a run scoring them now, {len(s['failed'])} failed")
        lines += [f"Failed: {f['error']}" for f in s["failed"]]
    lines += [f"Speed: {s['rows_per_s']:.1f} rows/s ({s['seconds']:.1f} s on {where})", model,
              f"Output: {s['output']}", s["drift_line"],
              *(f"Contract warning: {w}" for w in s["warnings"]),
              f"MLflow run: {s['mlflow_run_url']}"]
    return lines


def publish_scores(s: dict) -> None:
    if s.get("nothing_new"):
        create_markdown_artifact(
            markdown=f"# Scores\n\n**Nothing new**: the {len(s['skipped'])} input file(s) of "
                     f"`{s['input']}` were all scored already (manifest in `{s['output']}`).\n",
            key=SCORES_KEY, description="nothing new to score")
        return
    d = s["distribution"]
    rows = [("rows", s["rows"]), ("errors", s["errors"]), ("rows/s", s["rows_per_s"]),
            ("seconds", s["seconds"]), ("model", s["model_uri"]),
            ("model version", s["model_version"]), ("output", f"`{s['output']}`"),
            ("drift", s["drift_line"].removeprefix("Drift: ")),
            ("MLflow run", f"[{s['mlflow_run_id']}]({s['mlflow_run_url']})")]
    if d.get("scored"):
        rows += [("mean score", f"{d['mean']:.4f}"), ("positive share", f"{d['positive_share']:.4f}"),
                 ("quantiles p05 / p25 / p50 / p75 / p95",
                  " / ".join(f"{d[k]:.3f}" for k in ("p05", "p25", "p50", "p75", "p95")))]
    table = "\n".join(["| | |", "| --- | --- |", *(f"| {k} | {v} |" for k, v in rows)])
    if s["mode"] == "folder":
        files = [(f["path"], f"`{f['output']}`", f["rows"], "scored") for f in s["files"]]
        files += [(f["path"], f"`{f['output']}`", f["rows"], "finished (earlier run's output)")
                  for f in s["adopted"]]
        files += [(f["path"], "", 0, f"failed: {f['error']}") for f in s["failed"]]
        files += [(f, "", 0, "left to the run scoring it now") for f in s["busy"]]
        files += [(f["path"], "", "", f"already {f['status']}") for f in s["skipped"]]
        table += "\n\n**Files**\n\n| input | output | rows | |\n| --- | --- | ---: | --- |\n" + \
            "\n".join(f"| {a} | {b} | {c} | {d} |" for a, b, c, d in files)
    hist = d.get("histogram") or {}
    if hist.get("counts"):
        edges = hist["edges"]
        bins = "\n".join(f"| {edges[i]:.1f}-{edges[i + 1]:.1f} | {c} |"
                         for i, c in enumerate(hist["counts"]))
        table += "\n\n**Score histogram**\n\n| P(positive) | reviews |\n| --- | --- |\n" + bins
    if s["error_counts"]:
        table += "\n\n**Rows not scored**\n\n| error | rows |\n| --- | --- |\n" + "\n".join(
            f"| {k} | {v} |" for k, v in sorted(s["error_counts"].items()))
    if s["warnings"]:
        table += "\n\n**Data contract warnings**\n\n" + "\n".join(f"- {w}" for w in s["warnings"])
    create_markdown_artifact(markdown=f"# Scores\n\n{table}\n", key=SCORES_KEY,
                             description=f"{s['rows']} reviews scored with {s['model_uri']}")


def publish_drift(s: dict) -> None:
    create_markdown_artifact(markdown=drift_markdown(s["drift"], s["model_uri"]), key=DRIFT_KEY,
                             description=s["drift_line"])
