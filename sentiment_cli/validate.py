"""`sentiment validate`: check the data contract, print its summary, exit 1 on a failure."""

from __future__ import annotations

import sys
from pathlib import Path

from sentiment.config import Config
from sentiment_cli.config_args import add_config_arguments

# The data, where the report goes, and the contract's thresholds.
OPTIONS = ("data", "run_dir", "min_rows", "min_text_chars", "max_text_chars", "balance_low",
           "balance_high")


def add_parser(sub) -> None:
    p = sub.add_parser("validate", help="Check the data contract (Great Expectations); exit 1 "
                                        "on a critical failure.")
    p.add_argument("--report-dir", default=None,
                   help="Where the summary, GE results and Data Docs are written "
                        "(default: RUN_DIR/validation).")
    add_config_arguments(p, OPTIONS)
    p.set_defaults(run=run, check_data=True)


def run(cfg: Config, args) -> int:
    from sentiment.contract.validation import validate_data
    report = Path(args.report_dir) if args.report_dir else Path(cfg.run_dir) / "validation"
    result = validate_data(cfg.data, cfg, report)
    print(result.summary_markdown)
    if result.success:
        verdict = ("with warnings: " + ", ".join(result.warnings)) if result.warnings \
            else "all passed"
        print(f"\nvalidation passed ({verdict})")
        return 0
    print("\nvalidation FAILED: " + result.failure_message(), file=sys.stderr)
    return 1
