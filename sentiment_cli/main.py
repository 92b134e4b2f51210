"""`sentiment`: the command line's entry point; each subcommand lives in its own module."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from sentiment_cli import (
    champion,
    evaluate,
    info,
    interrupts,
    pipeline,
    predict,
    promote,
    score,
    sweep,
    train,
    validate,
)
from sentiment_cli.config_args import config_from_args
from sentiment_cli.inputs import UsageError, check_data

COMMANDS = (train, evaluate, predict, info, validate, pipeline, promote, champion, score, sweep)


class Parser(argparse.ArgumentParser):
    """Errors in one line (the usage is one `--help` away), exit status 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class RunNameFormatter(logging.Formatter):
    """Names the Prefect task or flow run a record comes from, as Prefect's own format does:
    "INFO prefect.task_runs [train-model-0]: Finished in state Completed()"."""

    def format(self, record: logging.LogRecord) -> str:
        run = getattr(record, "task_run_name", None) or getattr(record, "flow_run_name", None)
        record.run = f" [{run}]" if run else ""
        return super().format(record)


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="sentiment", description=sys.modules[__package__].__doc__.split("\n")[0])
    p.add_argument("-v", "--verbose", action="store_true",
                   help="Log at INFO level; show tracebacks of errors.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(sub)
    p.commands = sub.choices  # name -> subcommand parser
    return p


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # named by the subcommand, whose --help lists what it takes
        parser.commands[args.command].error(f"unrecognized arguments: {' '.join(unknown)}")
    return args


def quiet_third_party_bars() -> None:
    """Hugging Face's and MLflow's progress bars redraw with \r: fine on a terminal, noise in a
    log file. Set before either library is imported; a variable the user set wins."""
    if not sys.stderr.isatty():
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # transformers' bars too
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def probe_store(cfg, args) -> None:
    """Check the tracking store before any work when the command needs it: `pipeline`, a
    tracked `train`, and `predict`/`evaluate` of a model given by MLflow URI. An unreachable
    server fails here in seconds, in one line naming it, before data or models are touched."""
    from sentiment.tracking.model_uri import is_model_uri
    from sentiment.tracking.store import configure, probe, tracking_uri
    # Bounded HTTP timeouts and retries, and pickle deserialization off, unless the user set them.
    configure(cfg)
    needs = (args.command in ("pipeline", "promote", "champion", "sweep")
             or (args.command == "train" and cfg.track)
             or (args.command in ("predict", "evaluate") and is_model_uri(getattr(args, "model", None))))
    if needs:
        probe(tracking_uri(cfg), cfg.probe_timeout_s)


def main(argv: list[str] | None = None) -> int:
    with interrupts.sigterm_raises():  # SIGTERM ends a command as Ctrl-C does (exit 143)
        code = _main(argv)
    if argv is None and code in (interrupts.EXIT_SIGINT, interrupts.EXIT_SIGTERM):
        interrupts.exit_now(code)  # the program itself (not a caller's main([...])) was stopped
    return code


def _main(argv: list[str] | None) -> int:
    args = parse(argv)
    quiet_third_party_bars()
    handler = logging.StreamHandler()
    handler.setFormatter(RunNameFormatter("%(levelname)s %(name)s%(run)s: %(message)s"))
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        handlers=[handler])
    try:
        cfg = config_from_args(args)
        if getattr(args, "check_data", False) and not getattr(args, "no_data", False):
            check_data(cfg.data)
        probe_store(cfg, args)
        return args.run(cfg, args)
    except UsageError as e:
        print(f"sentiment {args.command}: error: {e}", file=sys.stderr)
        return 2
    except (ValueError, FileNotFoundError, RuntimeError, TypeError) as e:
        # Known failure modes (bad data, unknown encoder, bad config) read as one line, not a trace.
        if args.verbose:
            raise
        print(f"sentiment {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        # Ctrl-C says nothing; SIGTERM and a lost training process say what stopped the run.
        print(f"sentiment {args.command}: {str(e) or 'interrupted'}; `--run-dir RUN_FOLDER "
              "--resume` continues it from its last checkpoint", file=sys.stderr)
        return interrupts.exit_code(e)


if __name__ == "__main__":
    sys.exit(main())
