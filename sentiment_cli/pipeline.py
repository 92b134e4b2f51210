"""`sentiment pipeline`: run the Prefect training flow in this process, then say what came of
it and print commands that work as printed.

Prefect is imported only here, and only after the options and the data path passed their
checks: a bad argument never starts a server or writes to ~/.prefect.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys
import time
from pathlib import Path

from sentiment.config import Config
from sentiment.tracking.names import CHAMPION
from sentiment_cli.config_args import add_config_arguments

DESCRIPTION = (
    "Validate, warm the token cache, train, evaluate, register and gate a new model version, "
    "as the Prefect flow train-sentiment, on Prefect's temporary local API (or the server "
    "PREFECT_API_URL names). Every `sentiment train` option applies; the default preset is "
    "homework (~46 min on 2 CPU cores), --preset quick takes minutes.")


def add_parser(sub) -> None:
    p = sub.add_parser("pipeline", help="Run the Prefect training flow here (temporary local "
                                        "API): train, register, gate.", description=DESCRIPTION)
    p.add_argument("--no-promote", action="store_true", help="Register but do not run the gate.")
    # A pipeline run is always tracked: --track/--no-track would be a lie here.
    add_config_arguments(p, [f.name for f in dataclasses.fields(Config) if f.name != "track"])
    p.set_defaults(run=run, check_data=True)


def run(cfg: Config, args) -> int:
    # Before Prefect starts (its temporary API alone takes seconds): a full disk or a --resume
    # without a readable checkpoint is said in one line, in seconds.
    from sentiment.tracking.store import store_needs
    from sentiment.training import run_folder
    from sentiment.training.preflight import check_before_work
    check_before_work(cfg, store_needs(cfg))
    # The temporary API's telemetry write races the flow for its SQLite lock and would phone
    # home; a user who wants it sets the variable.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # The first start on a machine creates and migrates the API's database, which can take
    # longer than Prefect's 20 s default on a small busy machine.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    # The run's own folder is made here, so that an interruption can name it.
    made = run_folder.is_preset_root(cfg)
    cfg = run_folder.resolve(cfg)
    if made:
        print(f"Run folder: {_command(cfg.run_dir)}")
    from flows.params import params_for
    from flows.train import train_sentiment
    from sentiment.contract.validation import ValidationError
    from sentiment_cli.interrupts import exit_code
    from sentiment_cli.prefect_api import temporary_api

    t = time.perf_counter()
    try:
        with temporary_api():
            summary = train_sentiment(**params_for(train_sentiment.fn, cfg,
                                                   promote=not args.no_promote))
    except ValidationError as e:
        print(f"sentiment pipeline: stopped before training: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as e:
        print(interrupted_line(cfg, e), file=sys.stderr)
        return exit_code(e)
    finally:
        if made:
            run_folder.remove_if_empty(Path(cfg.run_dir))
    print(report(summary, time.perf_counter() - t, explicit_store=bool(cfg.tracking_uri)))
    return 0


def interrupted_line(cfg: Config, e: KeyboardInterrupt) -> str:
    """One line: what stopped the run, and the command that continues it when a checkpoint
    was written (else that there is nothing to continue)."""
    from sentiment.training.checkpoints import interrupted_run
    from sentiment_cli.interrupts import Terminated
    what = "terminated (SIGTERM)" if isinstance(e, Terminated) else "interrupted"
    state = interrupted_run(cfg.run_dir) if Path(cfg.run_dir).is_dir() else None
    if state is None:
        return (f"sentiment pipeline: {what} before the first checkpoint; nothing to continue, "
                "run the same command again")
    return (f"sentiment pipeline: {what} after epoch {state['epoch']} of "
            f"{state['config'].get('epochs')}; the same command with --run-dir "
            f"{_command(cfg.run_dir)} --resume continues it")


def _command(path: str) -> str:
    """`path` as the user can type it here: relative below the working directory."""
    rel = os.path.relpath(path)
    return rel if not rel.startswith("..") else path


def sentiment_command() -> str:
    """How to run this command again from this shell: `sentiment` when it is on PATH,
    else the script's own path (e.g. .venv/bin/sentiment)."""
    script = Path(sys.argv[0])
    if script.name == "sentiment" and script.is_file():
        on_path = shutil.which("sentiment")
        if on_path and Path(on_path).resolve() == script.resolve():
            return "sentiment"
        return _command(str(script))
    return f"{_command(sys.executable)} -m sentiment_cli.main"


def mlflow_ui_command(uri: str) -> str:
    """The tracking server's address, or the command that serves a local store (with this
    environment's `mlflow`, which need not be on PATH)."""
    from flows.mlflow_link import serve_command
    mlflow = Path(sys.executable).with_name("mlflow")
    return serve_command(uri, _command(str(mlflow)) if mlflow.exists() else "mlflow") or uri


def report(s: dict, total_seconds: float, explicit_store: bool) -> str:
    from flows.summary import behaviour_text, parts_text, slices_text
    stages = " | ".join(f"{k} {v:.1f}s" for k, v in s["stage_seconds"].items())
    name, uri = s["model_name"], s["tracking_uri"]
    if s["promoted"]:
        verdict = f"now the {CHAMPION} ({s['promotion_reason']})"
    elif s["promotion_ran"]:
        verdict = f"not promoted ({s['promotion_reason']})"
        verdict += (f"; the {CHAMPION} stays version {s['champion_version']}"
                    if s["champion_version"] else f"; there is no {CHAMPION} yet")
    else:
        verdict = "not gated (--no-promote)"
    target = f"models:/{name}@{CHAMPION}" if s["champion_version"] else s["model_uri"]
    # `sentiment predict` finds a store other than the default through the environment.
    env = f"MLFLOW_TRACKING_URI={uri} " if explicit_store else ""
    return "\n".join([
        "",
        f"Stages (wall): {stages} | total {total_seconds:.1f}s",
        f"Token cache: {'hit' if s['token_cache_hit'] else 'miss'}",
        f"Test accuracy: {s['test_accuracy']:.4f}{parts_text(s)}",
        f"Baseline ({s['baseline_kind']}, {s['baseline_train_rows']} training reviews) on the same "
        f"test set: "
        f"{s['baseline_accuracy']:.4f}, lift {s['test_accuracy'] - s['baseline_accuracy']:+.4f}",
        f"Run folder: {_command(s['run_dir'])}",
        f"Model: {name} version {s['model_version']}, {verdict}",
        f"Behaviour (failed per test type): {behaviour_text(s)}",
        f"Slices (test accuracy): {slices_text(s)}",
        f"MLflow UI: {mlflow_ui_command(uri)}",
        f"  this run: {s['mlflow_run_url']}",
        f"Predict: {env}{sentiment_command()} predict --model {target} \"What a wonderful film!\"",
        f"  Python: mlflow.pyfunc.load_model(\"{target}\") with tracking URI {uri}",
    ])
