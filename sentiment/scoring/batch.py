"""Batch scoring: resolve the model once, score shards of reviews with a model loaded once per
process, and write the scores to parquet atomically, in input order, every row kept.

A row whose text cannot be scored (null, empty, only whitespace, not a string) gets an
``error`` and no probability; it is never dropped. The model comes by MLflow URI through
``sentiment.tracking.model_uri`` (the store probed, pickled models refused) and scores through
``SentimentModel.predict_proba``, the project's one inference path.
"""

from __future__ import annotations

import math
import os
import secrets
import socket
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

from sentiment.common.compute import set_threads
from sentiment.common.files import fsync_file, remove_stale_temps, temp_prefix, unwritable_folder
from sentiment.config import DECISION_THRESHOLD
from sentiment.scoring.inputs import ScoringInputError

OUTPUT_SUFFIX = ".parquet"
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
HISTOGRAM_BINS = 10

# One loaded model per (model URI, tracking URI) per process: a Dask worker scores shard after
# shard with the model it loaded for the first one.
_MODELS: dict[tuple[str, str], Any] = {}
_LOADS: dict[tuple[str, str], int] = {}
_LOCK = threading.Lock()


# ---------------------------------------------------------------------------- the model

def resolve_model(uri: str, store: str, timeout_s: Optional[float] = None) -> dict:
    """The exact version an alias (or `latest`) names right now, so that every shard scores
    with the same one even if the alias moves during the job: {requested, model_uri (pinned:
    models:/NAME/VERSION), model_name, model_version}. A run or artifact URI is its own pin
    (no version). The store is probed first: an unreachable one fails here in seconds."""
    from sentiment.tracking import model_uri as mu
    from sentiment.tracking.store import connect, probe
    parsed = mu.parse_model_uri(uri)
    probe(store, timeout_s)
    _, client = connect(store)
    mu.check_registry(client, parsed, store)  # names a missing model, version or alias
    name = parsed.get("name")
    if parsed["kind"] == "alias":
        version = client.get_model_version_by_alias(name, parsed["alias"]).version
    elif parsed["kind"] == "version":
        version = parsed["version"]
    elif parsed["kind"] == "latest":
        found = client.search_model_versions(f"name = '{name}'")
        if not found:
            raise ValueError(f"registered model {name!r} has no versions")
        version = max(int(v.version) for v in found)
    else:
        return {"requested": uri, "model_uri": uri.strip(), "model_name": None,
                "model_version": None}
    return {"requested": uri, "model_uri": f"models:/{name}/{version}", "model_name": name,
            "model_version": int(version)}


def load_model(model_uri: str, store: str, timeout_s: Optional[float] = None,
               torch_threads: Optional[int] = None, batch_size: Optional[int] = None):
    """(model with `predict_proba`, how many times this process has loaded it): loaded on the
    first call in a process, reused after."""
    key = (model_uri, store)
    with _LOCK:
        if key not in _MODELS:
            from sentiment.tracking.model_uri import load_model_uri
            set_threads(torch_threads)
            predictor = load_model_uri(model_uri, store, timeout_s)
            _MODELS[key] = _unwrapped(predictor)
            _LOADS[key] = _LOADS.get(key, 0) + 1
        model = _MODELS[key]
    if batch_size and hasattr(model, "batch_size"):
        model.batch_size = batch_size
    return model, _LOADS[key]


def _unwrapped(predictor):
    """The SentimentModel inside a loaded pyfunc (no DataFrame round trip per call), or the
    pyfunc predictor itself for a model of another kind."""
    try:
        inner = predictor.pyfunc.unwrap_python_model().model
    except Exception:
        return predictor
    return inner if hasattr(inner, "predict_proba") else predictor


def forget_models() -> None:
    """Drop this process's loaded models (tests; a long-lived worker that must reload)."""
    with _LOCK:
        _MODELS.clear()
        _LOADS.clear()


# ---------------------------------------------------------------------------- the rows

def text_error(text: Any) -> Optional[str]:
    """Why `text` cannot be scored; None when it can."""
    if text is None or (isinstance(text, float) and math.isnan(text)) \
            or type(text).__name__ == "NAType":
        return "null text"
    if not isinstance(text, str):
        return f"not a string ({type(text).__name__})"
    if not text:
        return "empty text"
    if not text.strip():
        return "blank text (whitespace only)"
    return None


def shard_bounds(rows: int, shard_rows: int) -> list[tuple[int, int]]:
    """[start, stop) of each shard, in input order."""
    return [(i, min(i + shard_rows, rows)) for i in range(0, rows, shard_rows)]


def process_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def score_shard(texts: list, model_uri: str, store: str, timeout_s: Optional[float] = None,
                torch_threads: Optional[int] = None,
                batch_size: Optional[int] = None) -> dict:
    """P(positive) of each scorable text, None and an error for the others, in order; plus
    which process scored the shard and how often that process loaded the model."""
    t = time.perf_counter()
    errors = [text_error(x) for x in texts]
    good = [i for i, e in enumerate(errors) if e is None]
    probs: list[Optional[float]] = [None] * len(texts)
    loads = _LOADS.get((model_uri, store), 0)
    if good:
        model, loads = load_model(model_uri, store, timeout_s, torch_threads, batch_size)
        for i, p in zip(good, model.predict_proba([texts[i] for i in good])):
            probs[i] = float(p)
    return {"probability": probs, "error": errors, "rows": len(texts),
            "seconds": time.perf_counter() - t, "process": process_name(),
            "model_loads": loads}


def assemble(keys, shards: list[dict], model_version: Optional[int], threshold: float):
    """The output table: the key column(s) of `keys`, then probability, label, model_version
    and error, row for row in input order."""
    import numpy as np
    import pandas as pd
    probs = [p for s in shards for p in s["probability"]]
    errors = [e for s in shards for e in s["error"]]
    if len(probs) != len(keys):
        raise RuntimeError(f"scored {len(probs)} rows of {len(keys)}: a shard went missing")
    prob = pd.array(probs, dtype="Float64")
    scored = ~np.asarray(prob.isna())
    label = pd.array([None] * len(probs), dtype="string")
    label[scored] = np.where(prob[scored].to_numpy(dtype=float) >= threshold, "pos", "neg")
    out = keys.reset_index(drop=True).copy()
    out["probability"] = prob
    out["label"] = label
    out["model_version"] = pd.array([model_version] * len(probs), dtype="Int64")
    out["error"] = pd.array(errors, dtype="string")
    return out


def distribution(probabilities) -> dict:
    """Mean, quantiles, positive share and a 10-bin histogram of the scores (nulls left out)."""
    import numpy as np
    p = np.asarray([x for x in probabilities if x is not None], dtype=float)
    if not len(p):
        return {"scored": 0, "histogram": {"edges": [], "counts": []}}
    edges = np.linspace(0.0, 1.0, HISTOGRAM_BINS + 1)
    counts, _ = np.histogram(p, bins=edges)
    d = {"scored": int(len(p)), "mean": float(p.mean()), "std": float(p.std()),
         "positive_share": float((p >= DECISION_THRESHOLD).mean()),
         **{f"p{round(q * 100):02d}": float(np.quantile(p, q)) for q in QUANTILES},
         "histogram": {"edges": [round(float(e), 2) for e in edges],
                       "counts": [int(c) for c in counts]}}
    return d


# ---------------------------------------------------------------------------- the output

def output_target(output: str, overwrite: bool = False, now: Optional[datetime] = None) -> Path:
    """The file this run writes: `output` itself when it ends in .parquet (an existing file
    refused unless `overwrite`), else a new scores-<UTC time>-<id>.parquet in the folder
    `output`. Its folder must be creatable and writable: checked now, before any work."""
    if not str(output).strip():
        raise ScoringInputError("no output given")
    path = Path(output).expanduser()
    if path.suffix.lower() == OUTPUT_SUFFIX:
        if path.is_dir():
            raise ScoringInputError(f"output {output} is a folder; name a new .parquet file "
                                    "or a folder without the .parquet suffix")
        if path.exists() and not overwrite:
            raise ScoringInputError(f"output {output} exists; name a new file or a folder, or "
                                    "replace it with overwrite (--overwrite)")
        target = path
    else:
        if path.exists() and not path.is_dir():
            raise ScoringInputError(f"output {output} is a file, not a folder (a file output "
                                    f"must end in {OUTPUT_SUFFIX})")
        stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
        target = path / f"scores-{stamp}-{secrets.token_hex(3)}{OUTPUT_SUFFIX}"
    _check_writable(target.parent, output)
    return target.absolute()


def _check_writable(folder: Path, named: str) -> None:
    problem = unwritable_folder(folder)
    if problem:
        raise ScoringInputError(f"output {named}: {problem}")


def write_scores(table, target: str | Path, overwrite: bool = False) -> str:
    """Write `table` to `target` as parquet in one step: a temp file beside it, flushed, then
    renamed into place. A failure leaves no partial file; without `overwrite` a file that
    appeared meanwhile (another run) is never replaced."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(target.parent)  # a killed writer's leftovers
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(target.name), suffix=".tmp",
                               dir=target.parent)
    os.close(fd)
    try:
        table.to_parquet(tmp, index=False)
        fsync_file(tmp)
        if overwrite:
            os.replace(tmp, target)
        else:
            _link_new(Path(tmp), target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return str(target)


def _link_new(tmp: Path, target: Path) -> None:
    """Put `tmp` at `target` only if nothing is there: a hard link fails on an existing name,
    where a rename would replace it."""
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise ScoringInputError(f"output {target} appeared while scoring (another run?); "
                                "nothing was replaced") from None
    except OSError:  # a file system without hard links
        if target.exists():
            raise ScoringInputError(f"output {target} appeared while scoring (another "
                                    "run?); nothing was replaced") from None
        os.replace(tmp, target)


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def threads_per_worker(workers: int, torch_threads: Optional[int]) -> int:
    """Torch threads for each of `workers` local worker processes: the machine's cores shared
    out, so that the workers do not oversubscribe them."""
    return torch_threads or max(1, cpu_count() // workers)


# ---------------------------------------------------------------------------- the job

def is_file_output(output: str) -> bool:
    """A .parquet output is one file of every row; any other path a folder scored
    incrementally, with a manifest."""
    return Path(str(output)).suffix.lower() == OUTPUT_SUFFIX


def plan_job(cfg, run_id: Optional[str] = None, now: Optional[datetime] = None) -> dict:
    """Everything a scoring job checks and decides before a cluster starts or a model loads,
    cheapest first: the input files, the output, the tracking store, the model version to pin
    (and its training profile), and, for a folder output, which files are new.
    {mode (file | folder), files, key_column, output, tracking_uri, requested, model_uri,
    model_name, model_version, run_id, date, and for a folder: todo, done, version_key}."""
    from sentiment.scoring.inputs import check_inputs, input_files
    from sentiment.scoring.manifest import Manifest, plan_inputs, version_key
    from sentiment.tracking.store import tracking_uri
    now = now or datetime.now(timezone.utc)
    run_id = run_id or secrets.token_hex(8)
    if is_file_output(cfg.output):
        inputs = check_inputs(cfg.input, cfg.text_column, cfg.id_column)
        job = {"mode": "file", "files": list(inputs.files), "key_column": inputs.key_column,
               "output": str(output_target(cfg.output, cfg.overwrite, now))}
    else:
        files = [str(f) for f in input_files(cfg.input, allow_empty=True)]
        folder = output_target(cfg.output, now=now).parent  # checked: a writable folder
        check_new_folder_inputs(cfg, files, folder)  # before the store is touched
        job = {"mode": "folder", "files": files, "output": str(folder),
               "key_column": cfg.id_column or "row"}
    store = tracking_uri(cfg)
    job.update(tracking_uri=store, run_id=run_id, date=now.strftime("%Y-%m-%d"),
               **resolve_model(cfg.model, store, cfg.probe_timeout_s))
    if job["mode"] == "folder":
        vkey = version_key(job["model_version"], job["model_uri"])
        todo, done = plan_inputs(Manifest(job["output"]), job["files"], vkey, cfg.rescore)
        job.update(version_key=vkey, todo=[p.to_dict() for p in todo], done=done)
    needed = job["mode"] == "file" or job["todo"]
    job["profile"] = model_profile(store, job) if needed else None
    return job


def check_new_folder_inputs(cfg, files: list[str], folder: str | Path) -> None:
    """The columns of the files a folder output has not scored yet (see
    ``inputs.check_new_inputs``); `sentiment score` calls it before importing Prefect."""
    from sentiment.scoring.inputs import check_new_inputs
    from sentiment.scoring.manifest import Manifest, plan_inputs
    new, _ = plan_inputs(Manifest(folder), files, "", rescore=cfg.rescore)
    check_new_inputs([p.path for p in new], cfg.text_column, cfg.id_column, cfg.on_bad_file)


def model_profile(store: str, resolved: dict) -> Optional[dict]:
    """The training-data profile of the resolved model, or None when it has none."""
    from sentiment.tracking.data_profile import load_profile, model_run_id
    from sentiment.tracking.store import connect
    _, client = connect(store)
    return load_profile(client, model_run_id(client, resolved))


def read_job_inputs(cfg, job: dict):
    """The planned files' rows: key column and text, in input order."""
    from sentiment.scoring.inputs import InputPlan, read_inputs
    return read_inputs(InputPlan(tuple(job["files"]), cfg.text_column, cfg.id_column))


def score_file_output(cfg, job: dict, submit) -> dict:
    """A .parquet output: every input row checked (contract, drift), scored by `submit` (see
    ``sentiment.scoring.folder``) and written to the one file, atomically."""
    from collections import Counter

    from sentiment.scoring.checks import checks_before_scoring, with_prediction_drift
    t = time.perf_counter()
    rows = read_job_inputs(cfg, job)
    texts = rows["text"].tolist()
    checks = checks_before_scoring(cfg, texts, job.get("profile"))
    handles = [submit(texts[a:b]) for a, b in shard_bounds(len(texts), cfg.shard_rows)]
    shards = [h() for h in handles]  # in submission order: the input's
    table = assemble(rows.drop(columns="text"), shards, job["model_version"], cfg.threshold)
    output = write_scores(table, job["output"], cfg.overwrite)
    probs = table["probability"].dropna().tolist()
    checks = with_prediction_drift(checks, job.get("profile"), probs, cfg.threshold)
    seconds = time.perf_counter() - t
    loads: dict[str, int] = {}
    for s in shards:
        loads[s["process"]] = max(loads.get(s["process"], 0), s["model_loads"])
    errors = Counter(e for e in table["error"].dropna())
    return {"files": [{"path": ", ".join(job["files"]), "output": output, "rows": len(table),
                       "errors": int(sum(errors.values()))}],
            "failed": [], "busy": [], "adopted": [],
            "rows": len(table), "errors": int(sum(errors.values())),
            "error_counts": dict(errors), "seconds": round(seconds, 3),
            "rows_per_s": round(len(table) / seconds, 2) if seconds > 0 else 0.0,
            "shards": len(shards), "model_loads": loads, **checks,
            "distribution": distribution(probs)}
