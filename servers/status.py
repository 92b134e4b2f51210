"""`python -m servers status`: what runs where: each process, its pid, the addresses it
listens on, its URL and log. Exit status 0 when everything runs, 3 otherwise."""

from __future__ import annotations

import json

from servers import postgres
from servers.layout import State
from servers.processes import listening, process, tree


def _postmaster(pid):
    import psutil
    try:
        return [psutil.Process(pid)] if pid else []
    except psutil.NoSuchProcess:
        return []


def collect(state: State) -> dict:
    procs = state.read_processes()
    out = {}
    for name, rec in procs.items():
        if name == "postgres":
            up = postgres.running(state)
            pid = postgres.pid(state) if up else None
            members = _postmaster(pid)
        else:
            up = process(rec) is not None
            pid = rec["pid"] if up else None
            members = tree(rec) if up else []
        out[name] = {"running": up, "pid": pid, "url": rec.get("url"), "log": rec.get("log"),
                     "listening": sorted({f"{a}:{p}" for _, a, p in listening(members)})}
    return out


def show(state: State) -> dict:
    info = collect(state)
    print(f"state: {state.root}")
    if not info:
        print("servers: not running")
    for name, i in info.items():
        where = ", ".join(i["listening"]) or "-"
        print(f"  {name:15s} {'running' if i['running'] else 'STOPPED':8s} "
              f"pid {i['pid'] or '-':<8} listens {where:22s} {i['url'] or ''}")
    if state.env_file.exists():
        print(f"clients: source {state.env_file}")
    return info


def main(as_json: bool = False) -> int:
    state = State.find()
    if as_json:
        info = collect(state)
        print(json.dumps({"state": str(state.root), "processes": info}, indent=2))
    else:
        info = show(state)
    return 0 if info and all(i["running"] for i in info.values()) else 3
