"""`sentiment sweep`: the Prefect flow sweep-heads in this process: heads of every kind trained
on one frozen-encoder pass (cached), Optuna trials as nested MLflow runs under one parent run,
then the comparison table. Prefect is imported only after the options passed their checks."""

from __future__ import annotations

import os
import time

from sentiment.config import Config
from sentiment_cli.config_args import add_config_arguments

OPTIONS = ("data", "split_seed", "train_fraction", "max_train", "max_valid", "max_test",
           "encoder", "encoder_revision", "max_length", "truncation", "epochs", "batch_size",
           "eval_batch_size", "seed", "device", "num_threads", "encoder_precision", "cache_dir",
           "run_dir", "progress", "sweep_heads", "sweep_trials", "sweep_minutes", "sweep_study",
           "sweep_storage", "tracking_uri", "experiment", "model_name", "min_accuracy",
           "min_improvement", "min_lift_over_baseline")


DESCRIPTION = (
    "Compare heads on one frozen-encoder pass (the state cache): Optuna trials over head type "
    "(gru, cnn, linformer, linear_attention), size, learning rate and dropout, as the Prefect "
    "flow sweep-heads on Prefect's temporary local API (or the server PREFECT_API_URL names). "
    "Each trial is a nested MLflow run under one parent run holding the comparison table and "
    "plot; the study lives beside the SQLite tracking store or in --sweep-storage.")


def add_parser(sub) -> None:
    p = sub.add_parser("sweep", help="Compare heads (GRU, CNN, Linformer, linear attention) on "
                                     "one frozen-encoder pass: an Optuna sweep tracked in MLflow.",
                       description=DESCRIPTION)
    p.add_argument("--register-best", action="store_true",
                   help="Register the best trial (by validation accuracy) as a model version.")
    p.add_argument("--promote", action="store_true",
                   help="Register the best trial and run the promotion gate on it.")
    add_config_arguments(p, OPTIONS)
    p.set_defaults(run=run, check_data=True)


def run(cfg: Config, args) -> int:
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    from flows.params import params_for
    from flows.sweep import sweep_sentiment
    from sentiment.training.sweep import markdown_table

    t = time.perf_counter()
    s = sweep_sentiment(**params_for(sweep_sentiment.fn, cfg, register_best=args.register_best,
                                     promote=args.promote))
    best = s["best"]
    print(f"\nSweep: study {s['study']}, {time.perf_counter() - t:.0f} s; folder {s['run_dir']}")
    print(markdown_table(s.get("rows", [])) if s.get("rows") else "")
    if best:
        print(f"Best: trial {best['trial']} ({best['head']}), validation accuracy "
              f"{best['val_accuracy']:.4f}, test accuracy {best['test_accuracy']:.4f}, run "
              f"{best['run_id']}")
    if "version" in s:
        print(f"Registered as version {s['version']}"
              + (f"; promoted: {s['decision']}" if "decision" in s else ""))
    print(f"MLflow parent run: {s['mlflow_url']}")
    return 0
