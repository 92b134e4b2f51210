"""Which MLflow run owns a run folder: ``mlflow_run.json`` in the folder names it, so what
registration and evaluation read is that run's own files, never those of another run that
wrote the same folder later."""

from __future__ import annotations

import json
from pathlib import Path

RUN_REF = "mlflow_run.json"         # in run_dir: the MLflow run that owns the folder


class RunDirMismatch(ValueError):
    """A run folder does not belong to the MLflow run it was given with."""


def run_dir_of(run_id: str, run_dir: str | Path) -> Path:
    """`run_dir`, checked to be the folder MLflow run `run_id` trained in (its mlflow_run.json
    names that run). One-line error otherwise."""
    run_dir = Path(run_dir)
    ref = run_dir / RUN_REF
    try:
        saved = json.loads(ref.read_text()).get("run_id")
    except FileNotFoundError:
        raise RunDirMismatch(f"{run_dir} is not the folder of MLflow run {run_id}: it has no "
                             f"{RUN_REF}") from None
    except (OSError, ValueError, AttributeError) as e:
        raise RunDirMismatch(f"{ref} is unreadable ({' '.join(str(e).split())})") from None
    if saved != run_id:
        raise RunDirMismatch(f"{run_dir} now holds MLflow run {saved}, not run {run_id}: another "
                             "run trained in the same folder; register from that run's own "
                             "folder (its run_dir tag)")
    return run_dir
