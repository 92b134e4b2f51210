"""Shared fixtures. Tests never touch the network: encoders are the packaged MiniLM or random-init."""

from __future__ import annotations

import os
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Keep every library quiet and offline, whatever the developer's shell says.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
# Tiny test models gain nothing from a second thread, and several torch processes at 2 OpenMP
# threads each on 2 cores (the CLI and server tests start subprocesses) spin-wait ~4x slower.
os.environ.setdefault("OMP_NUM_THREADS", "1")


def imdb_path() -> Path:
    return Path(os.environ.get("IMDB_DATA", REPO.parent / "shared" / "data" / "imdb"))


@pytest.fixture(scope="session")
def imdb_dir() -> Path:
    p = imdb_path()
    if not (p / "train.parquet").exists():
        pytest.skip(f"real IMDB parquet files not found at {p} (set IMDB_DATA)")
    return p


def free_port() -> int:
    """A loopback port free right now (servers started by tests bind 127.0.0.1 only)."""
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_process_group(proc, grace: float = 20.0) -> None:
    """SIGTERM a process started with start_new_session=True, then SIGKILL its whole group,
    so nothing a server forked (uvicorn workers, flow runs) outlives the test."""
    import signal
    import subprocess
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        if sig == signal.SIGTERM:
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                pass
    proc.wait()


def wait_http_ok(url: str, proc, timeout: float, log_tail, interval: float = 0.5) -> None:
    """Poll ``url`` until it answers 200; fail the test with the server's log (``log_tail()``)
    if ``proc`` exits first or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"server exited ({proc.returncode}) before {url} answered:\n{log_tail()}")
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:  # refused, reset or timed out while the server starts
            pass
        time.sleep(interval)
    pytest.fail(f"{url} did not answer 200 within {timeout}s:\n{log_tail()}")
