"""How a command ends when it is asked to stop: Ctrl-C (SIGINT, to the whole process group
from a terminal) or SIGTERM (a service manager, `kill`).

Both raise in the main thread at once, so training stops in the middle of an epoch and
nothing half-written is kept (every file is written atomically); the tracked run is marked
KILLED on the way out. The command then exits 130 (SIGINT) or 143 (SIGTERM), the shell's
codes for those signals.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator

EXIT_SIGINT = 128 + signal.SIGINT    # 130
EXIT_SIGTERM = 128 + signal.SIGTERM  # 143


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that everything an interruption cleans up is cleaned
    up for it too."""


def _raise_terminated(signum, frame) -> None:
    # A second SIGTERM while the first one is being handled is ignored: cleanup finishes.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Terminated("terminated (SIGTERM)")


@contextlib.contextmanager
def sigterm_raises() -> Iterator[None]:
    """Within the block, SIGTERM raises `Terminated` in the main thread (elsewhere, e.g. a
    command run from a worker thread, nothing changes). Prefect's flow engine puts its own
    handler in place during a flow run and, after marking the run, hands the signal back to
    this one: the command still ends through `Terminated`."""
    try:
        previous = signal.signal(signal.SIGTERM, _raise_terminated)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def exit_code(e: KeyboardInterrupt) -> int:
    return EXIT_SIGTERM if isinstance(e, Terminated) else EXIT_SIGINT


def exit_now(code: int) -> None:
    """End the process at once, once an interruption has been handled.

    Interrupted in the middle of torch and Prefect work, the interpreter's own shutdown was
    seen to block in native code (no Python frame on the stack) for over a minute after the
    command had finished. By then everything the command owns is closed explicitly: the MLflow
    run is marked, the flow run's state reported, the temporary Prefect API stopped, and every
    file is written atomically; skipping the interpreter's shutdown loses nothing."""
    import os
    import sys
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)
