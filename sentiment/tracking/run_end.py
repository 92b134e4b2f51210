"""How a tracked run ends: FINISHED, KILLED when it was interrupted (Ctrl-C, SIGTERM, a stop
asked for: anything raised that is not an ``Exception``; ``--resume`` continues it) and FAILED
on an error to look at."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def status_for(exc: BaseException | None) -> str:
    if exc is None:
        return "FINISHED"
    if getattr(exc, "resumable", False):  # stopped at a checkpoint for --resume to continue
        return "KILLED"
    return "FAILED" if isinstance(exc, Exception) else "KILLED"


def end_run(mlflow, status: str) -> None:
    """End the active run with `status`; when the store cannot be reached the run stays
    RUNNING (said in one warning), and --resume reopens it."""
    try:
        mlflow.end_run(status)
    except Exception as e:
        log.warning("could not mark the MLflow run %s: %s", status, e)
