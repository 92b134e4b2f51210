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
ON_BAD_FILE = ("skip", "stop")
DRIFT_ACTIONS = ("warn", "fail")
# A Dask scheduler address: tcp://host:port (or another comm Dask speaks).
_SCHEDULER = re.compile(r"^(tcp|tls|inproc|ucx|ws|wss)://\S+$")


@dataclass
class ScoringConfig:
    """What to score with which model, where the scores go, and how the work is spread."""

    input: str = _f("", "Reviews to score: a parquet, CSV or JSON-lines file (.parquet, .csv, "
                        ".jsonl), or a folder of them (read in file-name order).")
    output: str = _f("", "Where the scores go: a path ending in .parquet is written as given "
                         "(every input row, one file); any other path is a folder scored "
                         "incrementally: each input file once per model version, into "
                         "date=YYYY-MM-DD/<file>-<hash>-v<version>.parquet, recorded in its "
                         "_manifest/.")
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
    rescore: bool = _f(False, "Folder output: score again every input file that this model "
                              "version has not scored yet, even if another version has (after "
                              "a promotion).")
    on_bad_file: str = _f("skip", "An input file that cannot be read or decoded: `skip` it "
                                  "(recorded as failed in the manifest, the others scored) or "
                                  "`stop` the run before any scoring.")
    drift: str = _f("warn", "Drift against the model's training profile: `warn` (report it, "
                            "score anyway) or `fail` (stop before scoring on input drift; "
                            "fail the run after scoring on score drift).")
    max_blank_share: float = _f(0.5, "Data contract, critical: the largest share of null, "
                                     "empty or blank texts before the run stops.")
    max_duplicate_share: float = _f(0.2, "Data contract, warning: the largest share of "
                                         "duplicate texts.")
    min_text_chars: int = _f(10, "Data contract, warning: texts shorter than this (characters) "
                                 "for more than 1% of the rows.")
    max_text_chars: int = _f(100_000, "Data contract, warning: texts longer than this "
                                      "(characters) for more than 1% of the rows.")
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
        for name in ("max_blank_share", "max_duplicate_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                problems.append(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if not 0 <= self.min_text_chars <= self.max_text_chars:
            problems.append(f"text lengths must satisfy 0 <= min_text_chars <= max_text_chars, "
                            f"got {self.min_text_chars} and {self.max_text_chars}")
        for name, allowed in (("on_bad_file", ON_BAD_FILE), ("drift", DRIFT_ACTIONS)):
            if getattr(self, name) not in allowed:
                problems.append(f"{name} must be one of {', '.join(allowed)}, got "
                                f"{getattr(self, name)!r}")
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

