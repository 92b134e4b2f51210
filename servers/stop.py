"""`python -m servers stop`: every process the start recorded, with whatever it started
(workers first, so nothing is submitted to a server going away), then PostgreSQL."""

from __future__ import annotations

from . import postgres
from .layout import State
from .processes import stop


def stop_all(state: State, quiet: bool = False) -> int:
    procs = state.read_processes()
    stopped = []
    for name in reversed(list(procs)):
        if name == "postgres":
            continue
        pids = stop(procs[name])
        if pids:
            stopped.append(f"{name} (pids {', '.join(map(str, pids))})")
    if postgres.running(state):
        postgres.stop(state)
        stopped.append("postgres")
    state.processes_file.unlink(missing_ok=True)
    state.env_file.unlink(missing_ok=True)
    if not quiet:
        print(f"servers: stopped {', '.join(stopped)}" if stopped
              else "servers: nothing was running")
    return 0


def main() -> int:
    return stop_all(State.find())
