"""Waiting for a server that is starting: poll a URL until it answers HTTP 200.

Standard library only, so the test suite and mlflow/screenshots.py can use it without the
server-mode dependencies (psutil, the PostgreSQL drivers).
"""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Callable


class ServerExited(RuntimeError):
    """The server's process ended before its URL answered 200."""

    def __init__(self, message: str, returncode: object):
        super().__init__(message)
        self.returncode = returncode


def wait_http_ok(url: str, timeout: float, poll: Callable[[], object] | None = None,
                 interval: float = 0.5) -> None:
    """Return once `url` answers 200.

    `poll` (e.g. `Popen.poll`) is asked before each try: None while the server's process runs,
    else its exit code (any other value when the code is unknown); ServerExited then. After
    `timeout` seconds, TimeoutError. Both messages are one line naming the URL and the seconds.
    """
    start = time.monotonic()
    deadline = start + timeout
    last = "no answer yet"
    while True:
        code = poll() if poll is not None else None
        if code is not None:
            detail = f"exit code {code}" if isinstance(code, int) else "exit code unknown"
            raise ServerExited(f"the server exited ({detail}) after {time.monotonic() - start:.0f} s, "
                               f"before {url} answered 200", code)
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    return
                last = f"HTTP {r.status}"
        except OSError as e:  # refused, reset, timed out or an HTTP error while the server starts
            last = str(e)
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{url} did not answer 200 within {timeout:g} s (last: {last})")
        time.sleep(interval)
