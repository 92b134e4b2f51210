"""Background processes of server mode: started detached in their own process group, recorded
by pid and start time (so a recycled pid is never mistaken for ours), stopped with everything
they started."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from pathlib import Path

import psutil

from servers import http_wait


def spawn(args: list[str], log: Path, env: dict, cwd: Path) -> dict:
    """Start `args` in a new session with its output in `log`; its record for processes.json."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        p = subprocess.Popen(args, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, start_new_session=True)
    return {"pid": p.pid, "pgid": p.pid, "started": psutil.Process(p.pid).create_time(),
            "log": str(log), "cmd": " ".join(args[:4])}


def process(record: dict) -> psutil.Process | None:
    """The live process a record names, or None (exited, or its pid now belongs to another)."""
    try:
        p = psutil.Process(record["pid"])
        if abs(p.create_time() - record["started"]) > 1 or p.status() == psutil.STATUS_ZOMBIE:
            return None
        return p
    except (psutil.NoSuchProcess, KeyError):
        return None


def tree(record: dict) -> list[psutil.Process]:
    """The recorded process and every descendant (flow runs start in sessions of their own,
    so the process group alone misses them), plus whatever is left in its process group."""
    found: dict[int, psutil.Process] = {}
    p = process(record)
    if p is not None:
        found[p.pid] = p
        try:
            for c in p.children(recursive=True):
                found[c.pid] = c
        except psutil.NoSuchProcess:
            pass
    for q in psutil.process_iter():
        try:
            if q.pid not in found and os.getpgid(q.pid) == record["pgid"]:
                found[q.pid] = q
        except (ProcessLookupError, psutil.NoSuchProcess):
            pass
    return list(found.values())


def stop(record: dict, grace: float = 10.0) -> list[int]:
    """SIGTERM the process, its group and its descendants; SIGKILL what is left after `grace`
    seconds. The pids that were running."""
    procs = tree(record)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(record["pgid"], sig)
        except (ProcessLookupError, PermissionError):
            pass
        for p in procs:
            try:
                p.send_signal(sig)
            except psutil.NoSuchProcess:
                pass
        _, alive = psutil.wait_procs(procs, timeout=grace if sig == signal.SIGTERM else 10)
        if not alive:
            break
    return [p.pid for p in procs]


def listening(procs: list[psutil.Process]) -> list[tuple[int, str, int]]:
    """(pid, address, port) of every TCP socket the processes listen on."""
    found = []
    for p in procs:
        try:
            for c in p.net_connections(kind="inet"):
                if c.status == psutil.CONN_LISTEN:
                    found.append((p.pid, c.laddr.ip, c.laddr.port))
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return found


def port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_http_ok(url: str, record: dict, timeout: float, what: str) -> None:
    """Poll `url` until it answers 200; a one-line error naming the log if the process exits
    or `timeout` passes first."""
    # The process is recorded, not held as a Popen: its exit code is not ours to read.
    try:
        http_wait.wait_http_ok(url, timeout, poll=lambda: None if process(record) else "unknown")
    except http_wait.ServerExited:
        raise SystemExit(f"servers: {what} exited while starting; see {record['log']}") from None
    except TimeoutError as e:
        raise SystemExit(f"servers: {what} not ready: {e}; see {record['log']}") from None
