"""`sentiment promote`: the promotion gate for one registered version, from the command line.

The same gate as the pipeline's and the `promote-sentiment` flow's: `min_accuracy`, a lift over
the bag-of-words baseline tested on the version's test set, a gain over the champion on it.
"""

from __future__ import annotations

import json

from sentiment.config import Config
from sentiment_cli.config_args import add_config_arguments

OPTIONS = ("tracking_uri", "model_name", "baseline_model_name", "min_accuracy", "min_improvement",
           "min_lift_over_baseline", "max_behaviour_failure_rate", "max_slice_loss",
           "promotion_lock_timeout_s")


def add_parser(sub) -> None:
    p = sub.add_parser("promote", help="Gate a registered version; move the champion alias if "
                                       "it passes.",
                       description="Gate a registered version against the minimum, the "
                                   "bag-of-words baseline and the champion, on its own test set. "
                                   "Exit status 0 when promoted, 1 when the gate refused it.")
    p.add_argument("--version", type=int, default=None,
                   help="The model version to gate. Default: the newest.")
    p.add_argument("--json", action="store_true", help="Print the whole decision as JSON.")
    add_config_arguments(p, OPTIONS)
    p.set_defaults(run=run)


def run(cfg: Config, args) -> int:
    from sentiment.tracking.promotion import promote
    decision = promote(cfg, args.version)
    if args.json:
        print(json.dumps({k: v for k, v in decision.items() if k != "markdown"}, indent=2))
    else:
        verdict = "promoted" if decision["promoted"] else "not promoted"
        print(f"Version {decision['candidate']['version']} {verdict}: {decision['reason']}")
    return 0 if decision["promoted"] else 1
