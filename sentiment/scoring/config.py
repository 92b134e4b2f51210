"""The one typed configuration of a batch-scoring job, with a help text per field.

Every scoring default lives here; the `score-reviews` flow, its deployment and
`sentiment score` leave a setting empty (None) to keep it. Model-side defaults (the registered
model's name, the store probe's patience) come from ``sentiment.config``, so the two cannot
drift apart.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field, fields
from typing import Any, Optional

from sentiment.config import DECISION_THRESHOLD, default
from sentiment.tracking.names import CHAMPION


def _f(value: Any, help: str) -> Any:
    return field(default=value, metadata={"help": help})


DEFAULT_MODEL = f"models:/{default('model_name')}@{CHAMPION}"
# A Dask scheduler address: tcp://host:port (or another comm Dask speaks).
_SCHEDULER = re.compile(r"^(tcp|tls|inproc|ucx|ws|wss)://\S+$")


@dataclass
class ScoringConfig:
    """What to score with which model, where the scores go, and how the work is spread."""

    input: str = _f("", "Reviews to score: a parquet, CSV or JSON-lines file (.parquet, .csv, "
                        ".jsonl), or a folder of them (read in file-name order).")
    output: str = _f("", "Where the scores go: a path ending in .parquet is written as given; "
                         "any other path is a folder in which each run writes its own "
                         "scores-<UTC time>-<id>.parquet.")
    model: str = _f(DEFAULT_MODEL, "MLflow model URI: models:/NAME@ALIAS, models:/NAME/VERSION "
                                   "or runs:/RUN_ID/model. An alias is resolved to its version "
                                   "once, when the job starts.")
    tracking_uri: Optional[str] = _f(None, "MLflow tracking URI (None: $MLFLOW_TRACKING_URI or "
                                           "the local SQLite store under mlflow/).")
    experiment: str = _f("imdb-sentiment-scoring", "MLflow experiment of the scoring runs.")
    text_column: str = _f("text", "Column holding the review texts.")
    id_column: Optional[str] = _f(None, "Column copied beside each score to identify its row "
                                        "(None: the row number, in a column `row`).")
    overwrite: bool = _f(False, "Replace an existing output file (a .parquet output only).")
    workers: int = _f(1, "Dask worker processes of the local cluster, one thread each "
                         "(ignored with a scheduler).")
    scheduler: Optional[str] = _f(None, "Address of a running Dask scheduler, e.g. "
                                        "tcp://10.0.0.5:8786 (None: a local cluster of "
                                        "`workers` processes, started and stopped by the job).")
    torch_threads: Optional[int] = _f(None, "Torch CPU threads per worker (None: the machine's "
                                            "cores // workers on a local cluster; torch's "
                                            "default on a scheduler's workers).")
    shard_rows: int = _f(1000, "Reviews per shard: one Prefect task each.")
    batch_size: Optional[int] = _f(None, "Reviews per forward pass (None: the model's "
                                         "default, eval_batch_size of sentiment.config).")
    threshold: float = _f(DECISION_THRESHOLD, "P(positive) at or above which the label is `pos`.")
    probe_timeout_s: float = _f(default("probe_timeout_s"),
                                "Seconds the tracking store may take to answer before any work "
                                "starts.")

    def __post_init__(self) -> None:
        problems = []
        for name in ("workers", "shard_rows"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("torch_threads", "batch_size"):
            v = getattr(self, name)
            if v is not None and v < 1:
                problems.append(f"{name} must be >= 1 or None, got {v}")
        if not 0.0 <= self.threshold <= 1.0:
            problems.append(f"threshold must be in [0, 1], got {self.threshold}")
        if self.probe_timeout_s <= 0:
            problems.append(f"probe_timeout_s must be > 0, got {self.probe_timeout_s}")
        if self.scheduler is not None and not _SCHEDULER.match(self.scheduler):
            problems.append(f"scheduler {self.scheduler!r} is not a Dask scheduler address "
                            "(e.g. tcp://10.0.0.5:8786)")
        if not self.text_column:
            problems.append("text_column must not be empty")
        if self.id_column is not None and self.id_column == self.text_column:
            problems.append("id_column must differ from text_column")
        if problems:
            raise ValueError("invalid scoring config: " + "; ".join(problems))

    @classmethod
    def build(cls, **values: Any) -> ScoringConfig:
        """A config from named values; None keeps a field's default."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"unknown scoring setting(s): {', '.join(unknown)}")
        return cls(**{k: v for k, v in values.items() if v is not None})

    def replace(self, **changes: Any) -> ScoringConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

