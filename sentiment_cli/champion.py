"""`sentiment champion show|history|rollback`: who holds the `champion` alias, every move it
made, and going back to an earlier version (``sentiment.tracking.champion``)."""

from __future__ import annotations

import json

from sentiment.config import Config
from sentiment_cli.config_args import add_config_arguments

OPTIONS = ("tracking_uri", "model_name", "promotion_lock_timeout_s")


def add_parser(sub) -> None:
    p = sub.add_parser("champion", help="Show the champion, its history, or roll it back.",
                       description="The `champion` alias in the registry: who holds it, every "
                                   "move it made (from, to, when, by whom, why), and a "
                                   "rollback to an earlier version under the promotion lock.")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    show = actions.add_parser("show", help="The champion: version, since when, the decision "
                                           "that put it there, its test accuracy and test set.")
    show.add_argument("--json", action="store_true", help="Print it as JSON.")
    hist = actions.add_parser("history", help="Every move of the alias, oldest first.")
    hist.add_argument("--json", action="store_true", help="Print the moves as JSON.")
    back = actions.add_parser(
        "rollback", help="Move the alias back (default: to the champion before the last "
                         "promotion). Exit status 0 when moved, 1 when the target was refused.",
        description="Move the champion alias back to an earlier version, under the promotion "
                    "lock, and record the decision on that version. The accuracy gate is not "
                    "applied; a version that no longer loads, needs pickle or whose files "
                    "fail the checksums recorded at registration is refused.")
    back.add_argument("--to", type=int, default=None, metavar="VERSION",
                      help="The version to go back to. Default: the champion before the "
                           "promotion of the current one.")
    back.add_argument("--reason", required=True, help="Why: recorded with the decision.")
    back.add_argument("--json", action="store_true", help="Print the decision as JSON.")
    for action in (show, hist, back):
        add_config_arguments(action, OPTIONS)
        action.set_defaults(run=run)


def _table(moves: list[dict]) -> str:
    rows = [("when", "from", "to", "how", "by", "reason")]
    rows += [(m["time"] or "-", "-" if m["from"] is None else str(m["from"]), str(m["to"]),
              m["kind"], m["by"] or "-", m["reason"]) for m in moves]
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r[:5], widths)) + "  " + r[5]
                     for r in rows)


def run(cfg: Config, args) -> int:
    from sentiment.tracking import champion
    if args.action == "show":
        found = champion.show(cfg)
        if args.json:
            print(json.dumps(found, indent=2))
        elif found["version"] is None:
            print(f"{cfg.model_name} has no champion ({found['moves']} moves recorded)")
        else:
            d = found["decision"]
            acc = found["test_accuracy"]
            print(f"champion: version {found['version']} of {cfg.model_name}, since "
                  f"{found['since'] or 'unknown (set outside the gate)'}")
            print(f"test accuracy: {'unknown' if acc is None else f'{acc:.4f}'} on test set "
                  f"{found['test_set'] or 'unknown'}")
            if d:
                print(f"{d['kind']} by {d['by'] or 'unknown'}: {d['reason']}")
            target = found["rollback_target"]
            print(f"rollback target: {'none' if target is None else f'version {target}'}")
        return 0
    if args.action == "history":
        from sentiment.tracking.store import connect, tracking_uri
        _, client = connect(tracking_uri(cfg), cfg)
        moves = champion.history(client, cfg.model_name)
        print(json.dumps(moves, indent=2) if args.json else _table(moves))
        return 0
    try:
        done = champion.rollback(cfg, args.to, args.reason)
    except champion.RollbackRefused as e:
        print(f"not rolled back: {e}")
        return 1
    if args.json:
        print(json.dumps({k: v for k, v in done.items() if k != "markdown"}, indent=2))
    else:
        print(f"Rolled back {cfg.model_name} from version {done['from']['version']} to "
              f"{done['to']['version']}: {done['reason']}")
    return 0
