"""Scoring a folder output incrementally and exactly once (see ``sentiment.scoring.manifest``).

The shards are scored by whatever the caller hands in as `submit` (texts -> a function that
waits for and returns the shard's result, ``batch.score_shard``'s dict): Prefect tasks on Dask
in the flow, a plain call in tests. Everything else, claims, reading, checks, writing and the
manifest, runs here, in the one process that holds the claims.

Order, so that nothing is scored that should not be: claim the files -> read them (a bad file
stops the run or is recorded failed, by `on_bad_file`) -> the data contract (a critical breach
stops the run) -> input drift (with `drift=fail`, stops the run) -> every shard submitted ->
each file written and recorded as soon as its shards are back.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from sentiment.scoring import batch
from sentiment.scoring.checks import checks_before_scoring, with_prediction_drift
from sentiment.scoring.inputs import ScoringInputError, read_file
from sentiment.scoring.manifest import (
    CLAIMED,
    FAILED,
    SCORED,
    Manifest,
    Pending,
    adoptable,
    output_name,
)


def _record(p: Pending, job: dict, **fields) -> dict:
    return {"input": str(Path(p.path).absolute()), "sha256": p.sha256, "bytes": p.bytes,
            "version_key": job["version_key"], "model_uri": job["model_uri"],
            "model_version": job["model_version"], "run_id": job["run_id"], **fields}


def score_folder(cfg, job: dict, submit: Callable, report: Callable[[str], None] = print) -> dict:
    """Score the planned inputs (job["todo"], claimed here) into the output folder; the
    summary of what happened to each file. `job`: output, todo [Pending dicts], version_key,
    model_uri, model_version, run_id, date, profile."""
    manifest = Manifest(job["output"])
    t = time.perf_counter()
    with contextlib.ExitStack() as held:
        claimed, busy = [], []
        for d in job["todo"]:
            p = Pending(**d)
            if held.enter_context(manifest.claim(p.sha256)):
                claimed.append(p)
            else:
                busy.append(p.path)
                report(f"Skipped {p.path}: another run is scoring it now")
        # Another run may have finished a file between the plan and the claim.
        claimed = [p for p in claimed if not manifest.done(p.sha256, job["version_key"],
                                                           cfg.rescore)]
        frames, failed, adopted = {}, [], []
        for p in claimed:
            record = adoptable(manifest, manifest.read(p.sha256, job["version_key"]))
            if record is not None:  # a killed run wrote it, and did not record it
                manifest.write({**record, "status": SCORED, "adopted_by": job["run_id"]})
                adopted.append({"path": p.path, "output": record["output"],
                                "rows": record["rows"]})
                continue
            try:
                frames[p.path] = read_file(p.path, cfg.text_column, cfg.id_column)
            except ScoringInputError as e:
                if cfg.on_bad_file == "stop":
                    raise ScoringInputError(f"{e} (on_bad_file=stop: nothing was scored)") \
                        from None
                manifest.write(_record(p, job, status=FAILED, error=str(e), output=None,
                                       rows=0))
                failed.append({"path": p.path, "error": str(e)})
                report(f"Failed {e}")
        todo = [p for p in claimed if p.path in frames]
        texts = [x for p in todo for x in frames[p.path]["text"].tolist()]
        checks = checks_before_scoring(cfg, texts, job.get("profile")) if todo else \
            {"contract": [], "warnings": [], "drift": {"setting": cfg.drift, "seconds": 0.0,
                                                        "input": {"checked": False,
                                                                  "reason": "nothing scored",
                                                                  "features": [],
                                                                  "drifted": []}}}
        # Each file's output named in its record before any shard runs: a retry after a kill
        # finds the record and either adopts the output (written) or scores again (not).
        waits = {}
        for p in todo:
            rows = frames[p.path]
            out = output_name(p.path, p.sha256, job["version_key"], job["date"])
            manifest.write(_record(p, job, status=CLAIMED, output=out,
                                   expected_rows=len(rows), started=time.time()))
            ts = rows["text"].tolist()
            waits[p.path] = (out, [submit(ts[a:b]) for a, b in
                                   batch.shard_bounds(len(ts), cfg.shard_rows)])
        scored, probs, errors, loads, shards = [], [], Counter(), {}, 0
        for p in todo:
            out, handles = waits[p.path]
            results = [h() for h in handles]
            table = batch.assemble(frames[p.path].drop(columns="text"), results,
                                   job["model_version"], cfg.threshold)
            batch.write_scores(table, manifest.root / out, overwrite=True)
            n_err = int(table["error"].notna().sum())
            manifest.write(_record(p, job, status=SCORED, output=out, rows=len(table),
                                   errors=n_err, expected_rows=len(table),
                                   finished=time.time()))
            scored.append({"path": p.path, "output": out, "rows": len(table), "errors": n_err})
            probs += table["probability"].dropna().tolist()
            errors.update(e for e in table["error"].dropna())
            shards += len(results)
            for s in results:
                loads[s["process"]] = max(loads.get(s["process"], 0), s["model_loads"])
            report(f"Scored {p.path}: {len(table)} rows into {out}")
    checks = with_prediction_drift(checks, job.get("profile"), probs, cfg.threshold)
    seconds = time.perf_counter() - t
    rows = sum(s["rows"] for s in scored)
    return {"files": scored, "failed": failed, "busy": busy, "adopted": adopted,
            "rows": rows, "errors": int(sum(errors.values())), "error_counts": dict(errors),
            "seconds": round(seconds, 3),
            "rows_per_s": round(rows / seconds, 2) if seconds > 0 and rows else 0.0,
            "shards": shards, "model_loads": loads, **checks,
            "distribution": batch.distribution(probs)}
