"""`python -m servers stop`: every process the start recorded, with whatever it started
(workers first, so nothing is submitted to a server going away), then PostgreSQL."""

from __future__ import annotations

import time

from servers import postgres
from servers.layout import State
from servers.processes import stop


def stop_all(state: State, quiet: bool = False) -> int:
    procs = state.read_processes()
    stopped = []
    for name in reversed(list(procs)):
        if name == "postgres":
            continue
        t0 = time.monotonic()
        pids = stop(procs[name])
        if pids:
            stopped.append(f"{name} ({len(pids)} processes, {time.monotonic() - t0:.0f} s)")
    if postgres.running(state):
        t0 = time.monotonic()
        postgres.stop(state)
        stopped.append(f"postgres ({time.monotonic() - t0:.0f} s)")
    state.processes_file.unlink(missing_ok=True)
    state.env_file.unlink(missing_ok=True)
    if not quiet:
        print(f"servers: stopped {', '.join(stopped)}" if stopped
              else "servers: nothing was running")
    return 0


def main() -> int:
    return stop_all(State.find())
