"""The temporary Prefect API a command starts for its flow run, and stops when it ends.

Prefect starts its own temporary API as a child in the command's process group: Ctrl-C in a
terminal (SIGINT to the whole group) then stops the API too, and the flow run, unable to
report its state, hangs retrying the dead API; a SIGTERM'd command never stops it (Prefect
re-raises the signal with its default action, so no exit handler runs) and the server lives on.

This one runs the same server (Prefect's own class and command) in a session of its own, so a
terminal's Ctrl-C reaches only the command, which reports the flow run's end and then stops the
server; the kernel stops it too if the command dies without a word (kill -9), through
PR_SET_PDEATHSIG on Linux. With PREFECT_API_URL set (or a test harness's API in place), that
API is used and nothing starts.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Iterator


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the process that started it dies (Linux)."""
    if sys.platform.startswith("linux"):
        import ctypes
        PR_SET_PDEATHSIG = 1
        with contextlib.suppress(Exception):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _server_class():
    import subprocess

    from prefect.server.api.server import SubprocessASGIServer

    class OwnSessionServer(SubprocessASGIServer):
        """Prefect's temporary server, started in its own session."""

        def _run_uvicorn_command(self):
            real = subprocess.Popen

            def popen(*args, **kwargs):
                return real(*args, start_new_session=True, preexec_fn=_die_with_parent,
                            **kwargs)
            subprocess.Popen = popen  # only for this call, in the thread that starts it
            try:
                return super()._run_uvicorn_command()
            finally:
                subprocess.Popen = real
    return OwnSessionServer


def flush_prefect() -> None:
    """Send what Prefect still holds (logs, events) while its API is up, bounded in time."""
    with contextlib.suppress(Exception):
        from prefect.logging.handlers import APILogWorker
        APILogWorker.drain_all(timeout=5)
    with contextlib.suppress(Exception):
        from prefect.events.worker import EventsWorker
        EventsWorker.drain_all(timeout=5)


@contextlib.contextmanager
def temporary_api() -> Iterator[str | None]:
    """Yield the API URL of a temporary server started for the block (None when
    PREFECT_API_URL names one); the server is stopped when the block ends, however it ends."""
    from prefect.settings import PREFECT_API_URL, temporary_settings
    if PREFECT_API_URL.value():  # set in the environment, or by a caller's settings context
        yield None
        return
    server = _server_class()(port=_free_port())
    try:
        server.start()
        # Prefect reads its settings once, at import: the context, not only the environment
        # (which child processes read).
        os.environ["PREFECT_API_URL"] = server.api_url
        with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
            try:
                yield server.api_url
            finally:
                flush_prefect()
    finally:
        os.environ.pop("PREFECT_API_URL", None)
        server.stop()


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
