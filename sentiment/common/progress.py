"""Progress of a long loop: a tqdm bar on a terminal, a plain line now and then elsewhere.

A bar redraws itself with carriage returns, which turn a log file into one unreadable line per
batch; off a terminal the loop instead prints a whole line at most every ``INTERVAL_S`` seconds
(step, share done, rate and the loop's own figures such as the running loss).

Inside ``lines_to(sink)`` those lines, and whatever the loop reports through ``say``, go to
`sink` instead (an orchestrator's run logger, say), as plain lines even on a terminal.
"""

from __future__ import annotations

import contextlib
import contextvars
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Optional, TextIO

INTERVAL_S = 30.0  # seconds between two plain lines

_SINK: contextvars.ContextVar[Optional[Callable[[str], None]]] = contextvars.ContextVar(
    "progress_sink", default=None)


@contextlib.contextmanager
def lines_to(sink: Callable[[str], None]):
    """Inside the block, progress lines and ``say`` go to `sink` (one call per line)."""
    token = _SINK.set(sink)
    try:
        yield
    finally:
        _SINK.reset(token)


def say(line: str) -> None:
    """A line of a long job's report: to the current sink, else printed."""
    sink = _SINK.get()
    if sink is not None:
        sink(line)
    else:
        print(line, flush=True)


def is_terminal(stream: Optional[TextIO] = None) -> bool:
    stream = stream if stream is not None else sys.stderr
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def progress(iterable: Iterable, desc: str, enabled: bool = True, *, total: Optional[int] = None,
             unit: str = "batch", stream: Optional[TextIO] = None,
             interval_s: Optional[float] = None):
    """Wrap `iterable`; the result also has ``set_postfix(**figures)`` and ``close()``."""
    stream = stream if stream is not None else sys.stderr
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)
    if not enabled:
        return _Silent(iterable)
    if _SINK.get() is None and is_terminal(stream):
        from tqdm.auto import tqdm
        return tqdm(iterable, desc=desc, total=total, unit=unit, leave=False, file=stream)
    return _Lines(iterable, desc, total, unit, stream,
                  INTERVAL_S if interval_s is None else interval_s)


class _Silent:
    def __init__(self, iterable: Iterable):
        self._it = iterable

    def __iter__(self) -> Iterator:
        return iter(self._it)

    def set_postfix(self, **figures) -> None:
        pass

    def close(self) -> None:
        pass


class _Lines(_Silent):
    def __init__(self, iterable, desc, total, unit, stream, interval_s):
        super().__init__(iterable)
        self.desc, self.total, self.unit, self.stream = desc, total, unit, stream
        self.interval_s = interval_s
        self.n, self.figures, self.printed, self._reported = 0, {}, False, 0

    def __iter__(self) -> Iterator:
        self.t0 = last = time.perf_counter()
        for item in self._it:
            yield item
            self.n += 1
            now = time.perf_counter()
            if now - last >= self.interval_s:
                self._line(now)
                last = now
        # A loop that printed along the way says when it ended; a short one stays silent.
        if self.printed and self._reported != self.n:
            self._line(time.perf_counter())

    def set_postfix(self, **figures) -> None:
        self.figures = figures

    def _line(self, now: float) -> None:
        done = f"{self.n}/{self.total}" if self.total else str(self.n)
        share = f" ({self.n / self.total:.0%})" if self.total else ""
        rate = self.n / max(now - self.t0, 1e-9)
        extra = "".join(f", {k} {v}" for k, v in self.figures.items())
        line = f"{self.desc}: {self.unit} {done}{share}, {rate:.2f} {self.unit}/s{extra}"
        sink = _SINK.get()
        if sink is not None:
            sink(line)
        else:
            print(line, file=self.stream, flush=True)
        self.printed, self._reported = True, self.n


@contextlib.contextmanager
def datasets_bars_on_terminal_only(stream: Optional[TextIO] = None):
    """Inside the block, Hugging Face `datasets` shows its own bars only on a terminal."""
    import datasets
    was_on = datasets.utils.logging.is_progress_bar_enabled()
    if was_on and not is_terminal(stream):
        datasets.utils.logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_on:
            datasets.utils.logging.enable_progress_bar()
