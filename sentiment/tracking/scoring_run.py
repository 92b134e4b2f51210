"""The MLflow run of a scoring job: which model version scored what, how many rows, how many
errors, how fast, and the distribution of the scores.

Params name the job (input, output, the model URI asked for and the pinned one); metrics are
rows, errors, seconds, rows/s and the score quantiles, mean and positive share; the histogram
goes in an artifact, ``score_distribution.json``. The model version is also a tag, so runs can
be searched by it (``tags.model_version = '3'``).

Drift: per feature ``drift_<feature>_psi`` and ``drift_<feature>_p``, ``drift_features`` (how
many drifted) and ``drift_seconds``; the report as ``drift_report.json`` and
``drift_report.md``; the tag ``drift`` (``none``, the drifted features, or ``not checked``).
A folder output's files go in ``scored_files.json`` (input, output, rows; failed ones).
"""

from __future__ import annotations

import time
from typing import Optional

from sentiment.tracking.names import DRIFT_ARTIFACT
from sentiment.tracking.run_tags import run_tags
from sentiment.tracking.store import connect, ensure_experiment, tracking_uri

DISTRIBUTION_ARTIFACT = "score_distribution.json"


def describe(summary: dict) -> str:
    version = summary.get("model_version")
    model = f"version {version} of {summary['model_name']}" if version is not None \
        else summary["model_uri"]
    return (f"Scored {summary['rows']} reviews ({summary['errors']} not scorable) from "
            f"{summary['input']} with {model} into {summary['output']}; "
            f"{summary.get('drift_line', 'Drift: not checked')}")


def drift_metrics(drift: dict) -> dict:
    """{drift_<feature>_psi, drift_<feature>_p, drift_features, drift_seconds}."""
    rows = [r for part in ("input", "prediction") for r in drift.get(part, {}).get("features", [])]
    out = {f"drift_{r['feature']}_psi": r["psi"] for r in rows}
    out.update({f"drift_{r['feature']}_p": r["p_value"] for r in rows})
    out["drift_features"] = sum(1 for r in rows if r["drift"])
    out["drift_seconds"] = drift.get("seconds", 0.0)
    return out


def drift_tag(drift: dict) -> str:
    parts = [drift.get(k, {}) for k in ("input", "prediction")]
    if not any(p.get("checked") for p in parts):
        return "not checked"
    drifted = [f for p in parts for f in p.get("drifted", [])]
    return ",".join(drifted) or "none"


def log_scoring_run(cfg, summary: dict, dist: dict,
                    tags: Optional[dict[str, str]] = None) -> dict:
    """Log a finished scoring job (`cfg`: its ScoringConfig) as one MLflow run; {run_id,
    experiment_id, tracking_uri}."""
    from mlflow.entities import Metric, Param
    store = tracking_uri(cfg)
    _, client = connect(store)
    exp_id = ensure_experiment(client, cfg.experiment, store)
    drift = summary.get("drift") or {}
    own = {"job": "batch-scoring", "model_uri": summary["model_uri"], "drift": drift_tag(drift)}
    if summary.get("model_version") is not None:
        own.update(model_name=summary["model_name"], model_version=str(summary["model_version"]))
    # A scoring run records its model version, not this checkout: no git or package tags.
    all_tags = run_tags(describe(summary), own, tags, with_provenance=False)
    run = client.create_run(exp_id, tags=all_tags)
    run_id = run.info.run_id
    try:
        params = {"input": summary["input"], "output": summary["output"],
                  "model_requested": summary["model_requested"],
                  "model_uri": summary["model_uri"],
                  "model_version": summary.get("model_version"),
                  "text_column": cfg.text_column, "id_column": cfg.id_column,
                  "workers": summary.get("workers"), "scheduler": cfg.scheduler,
                  "shard_rows": cfg.shard_rows, "shards": summary.get("shards"),
                  "threshold": cfg.threshold}
        now = int(time.time() * 1000)
        values = {"rows": summary["rows"], "errors": summary["errors"],
                  "scored_rows": summary["rows"] - summary["errors"],
                  "seconds": summary["seconds"], "rows_per_s": summary["rows_per_s"],
                  **{f"score_{k}": v for k, v in dist.items()
                     if isinstance(v, (int, float)) and k != "scored"},
                  **(drift_metrics(drift) if drift else {})}
        client.log_batch(
            run_id,
            params=[Param(k, "None" if v is None else str(v)) for k, v in params.items()],
            metrics=[Metric(k, float(v), now, 0) for k, v in values.items()])
        client.log_dict(run_id, {"rows": summary["rows"], "errors": summary["errors"],
                                 "error_counts": summary.get("error_counts", {}), **dist},
                        DISTRIBUTION_ARTIFACT)
        if drift:
            from sentiment.drift.report import markdown
            client.log_dict(run_id, {**drift, "contract": summary.get("contract", [])},
                            DRIFT_ARTIFACT)
            client.log_text(run_id, markdown(drift, summary["model_uri"]),
                            DRIFT_ARTIFACT.replace(".json", ".md"))
        if summary.get("mode") == "folder":
            client.log_dict(run_id, {k: summary.get(k, []) for k in
                                     ("files", "adopted", "failed", "busy", "skipped")},
                            "scored_files.json")
        client.set_terminated(run_id, "FINISHED")
    except BaseException:
        client.set_terminated(run_id, "FAILED")
        raise
    return {"run_id": run_id, "experiment_id": exp_id, "tracking_uri": store}
