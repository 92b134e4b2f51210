"""python -m servers start|stop|status [--json]"""

from __future__ import annotations

import argparse
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m servers",
        description="Server mode on this machine: PostgreSQL, MLflow and Prefect servers, "
                    "the work pool and its workers (docs/server-mode.md).")
    parser.add_argument("command", choices=["start", "stop", "status"])
    parser.add_argument("--json", action="store_true", help="status as JSON")
    args = parser.parse_args(argv)
    if args.command == "start":
        from servers.start import start
        return start()
    if args.command == "stop":
        from servers.stop import main as stop
        return stop()
    from servers.status import main as status
    return status(as_json=args.json)


if __name__ == "__main__":
    sys.exit(main())
