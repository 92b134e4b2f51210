"""`sentiment score`: score a file or folder of reviews with a registered model, as the Prefect
flow score-reviews in this process (shards on a local Dask cluster or a running scheduler).

The input's files and columns, the output and the tracking store are checked before Prefect,
Dask or torch is imported: a mistake costs one line and exit status 2.
"""

from __future__ import annotations

import inspect
import os
import time

from sentiment.config import Config
from sentiment.scoring.config import ScoringConfig

# Options named as the flow's parameters; help texts and defaults from ScoringConfig.
OPTIONS = {"input": ("--input", "PATH", str), "output": ("--output", "PATH", str),
           "model": ("--model", "URI", str), "workers": ("--workers", "N", int),
           "scheduler": ("--scheduler", "ADDR", str),
           "text_column": ("--text-column", "C", str), "id_column": ("--id-column", "C", str),
           "tracking_uri": ("--tracking-uri", "URI", str),
           "experiment": ("--experiment", "NAME", str),
           "shard_rows": ("--shard-rows", "N", int), "batch_size": ("--batch-size", "N", int),
           "torch_threads": ("--torch-threads", "N", int),
           "on_bad_file": ("--on-bad-file", "{skip,stop}", str),
           "drift": ("--drift", "{warn,fail}", str)}
FLAGS = ("overwrite", "rescore")


def _help(name: str) -> str:
    f = ScoringConfig.__dataclass_fields__[name]
    shown = "" if f.default in (None, "") else f" Default: {f.default}."
    return (f.metadata["help"] + shown).replace("%", "%%")


def add_parser(sub) -> None:
    p = sub.add_parser(
        "score", help="Score a file or folder of reviews with a registered model (Prefect "
                      "flow score-reviews, shards on Dask).",
        description="Score every review of a parquet, CSV or JSON-lines file (or a folder of "
                    "them) with an MLflow model, in shards on a Dask cluster, and write "
                    "probability, label, model_version and error beside each row's id or row "
                    "number, in input order. Runs the Prefect flow score-reviews here, on "
                    "Prefect's temporary local API (or the server PREFECT_API_URL names).")
    for name, (flag, metavar, typ) in OPTIONS.items():
        p.add_argument(flag, dest=name, metavar=metavar, type=typ, default=None,
                       required=name in ("input", "output"), help=_help(name))
    for name in FLAGS:
        p.add_argument(f"--{name}", action="store_true", default=None, help=_help(name))
    p.set_defaults(run=run)


def scoring_config(args) -> ScoringConfig:
    return ScoringConfig.build(**{k: getattr(args, k) for k in (*OPTIONS, *FLAGS)})


def run(cfg: Config, args) -> int:
    from sentiment.scoring.batch import check_new_folder_inputs, is_file_output, output_target
    from sentiment.scoring.inputs import check_inputs, input_files
    from sentiment.tracking.store import configure, probe, tracking_uri
    scfg = scoring_config(args)
    # Cheap checks first, each a one-line error (exit 2), before Prefect, Dask or torch.
    if is_file_output(scfg.output):
        check_inputs(scfg.input, scfg.text_column, scfg.id_column)
        output_target(scfg.output, scfg.overwrite)
    else:  # a drop folder may be empty today; only its new files are checked
        files = [str(f) for f in input_files(scfg.input, allow_empty=True)]
        folder = output_target(scfg.output).parent
        check_new_folder_inputs(scfg, files, folder)
    configure(cfg)
    probe(tracking_uri(scfg), scfg.probe_timeout_s)
    # As `sentiment pipeline`: no telemetry racing the temporary API's SQLite lock, and time
    # for its first migration on a small busy machine.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    from flows.score import score_reviews, scoring_summary_lines
    FLOW_PARAMETERS = set(inspect.signature(score_reviews.fn).parameters)
    t = time.perf_counter()
    state = score_reviews(**{k: v for k, v in scfg.to_dict().items()
                             if v is not None and k in FLOW_PARAMETERS}, return_state=True)
    if not state.is_completed():
        summary = state.result(raise_on_failure=False)
        if not isinstance(summary, dict):
            state.result()  # raises the flow's error, as a call without return_state would
        # Scored and written, but the scores drift and `drift` is `fail`: the summary, then
        # the reason, and a failing exit status.
        print("\n".join(["", *scoring_summary_lines(summary)]))
        raise SystemExit(f"sentiment score: {state.message}")
    summary = state.result()
    print("\n".join(["", *scoring_summary_lines(summary),
                     f"Total: {time.perf_counter() - t:.1f} s with Prefect and Dask start-up"]))
    return 0
