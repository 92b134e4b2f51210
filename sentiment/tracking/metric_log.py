"""A training run's metric points: written to a journal in the run folder first, then sent to
MLflow in batches; what the server did not take is kept and sent again, within bounds.

- Each point is appended to ``RUN_DIR/metrics.journal.jsonl`` (one JSON object a line) before
  it is sent, so the run folder always knows every point the training produced.
- A failed send keeps the points (at most ``MAX_PENDING``; the journal keeps them all) and is
  retried at most every ``RETRY_EVERY_S`` seconds, so a flaky server slows training by a few
  requests, not by a retry storm; one warning says it started, one that it ended.
- At a safe point (after a checkpoint) the points still unsent are sent once more; when the
  server has been away for longer than ``tracking_outage_s``, training stops there with one
  line naming the server (``TrackingLost``).
- ``--resume`` compares the journal with the server's metric history and sends what the server
  never received; points it has are never sent twice.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from sentiment.tracking.store import StoreUnavailable

log = logging.getLogger(__name__)

JOURNAL = "metrics.journal.jsonl"  # in run_dir
MAX_PENDING = 100_000   # points kept in memory for a retry; older ones only in the journal
RETRY_EVERY_S = 5.0     # between sends while the server is away
BATCH = 1000            # MLflow's limit of metrics in one log_batch request


class TrackingLost(StoreUnavailable):
    """The tracking server stayed away; training stopped at a checkpoint. ``--resume``
    continues the run and re-sends the points the server never received."""

    resumable = True  # the MLflow run ends KILLED, not FAILED (sentiment.tracking.run_end)


def _one_line(e: BaseException, limit: int = 160) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return text[:limit]


def read_journal(path: str | Path) -> list[dict]:
    """The journal's points, the last written of each (key, step); a torn last line (a kill
    while appending) is skipped."""
    points: dict = {}
    try:
        lines = Path(path).read_text().splitlines()
    except FileNotFoundError:
        return []
    for line in lines:
        try:
            p = json.loads(line)
            points[(p["key"], int(p["step"]))] = p
        except (ValueError, KeyError, TypeError):
            continue
    return list(points.values())


def present_points(client, run_id: str) -> set:
    """Every (key, step) the run holds on the server."""
    run = client.get_run(run_id)
    return {(key, m.step) for key in run.data.metrics
            for m in client.get_metric_history(run_id, key)}


class MetricLog:
    def __init__(self, client, run_id: str, uri: str, run_dir: str | Path, outage_s: float,
                 present: set | None = None, clock=time.monotonic):
        self.client, self.run_id, self.uri = client, run_id, uri
        self.journal_path = Path(run_dir) / JOURNAL
        self.outage_s, self.clock = outage_s, clock
        self.present = set(present or ())
        self.pending: list = []
        self.failing_since: float | None = None
        self.last_try = -float("inf")
        self.cause = ""

    def replay(self) -> int:
        """Send the journal's points the server does not hold (an earlier attempt's, lost
        with the server); returns how many."""
        from mlflow.entities import Metric
        missing = [p for p in read_journal(self.journal_path)
                   if (p["key"], int(p["step"])) not in self.present]
        for p in missing:
            self.present.add((p["key"], int(p["step"])))
            self.pending.append(Metric(p["key"], float(p["value"]), int(p["timestamp"]),
                                       int(p["step"])))
        if missing and not self.send(force=True):
            raise self.lost("could not re-send the points an earlier attempt kept")
        return len(missing)

    def add(self, metrics: dict, step: int) -> None:
        """Journal and send the points the run does not hold yet."""
        from mlflow.entities import Metric
        now = int(time.time() * 1000)
        new = {k: float(v) for k, v in metrics.items() if (k, step) not in self.present}
        if not new:
            return
        with open(self.journal_path, "a") as f:
            for k, v in new.items():
                f.write(json.dumps({"key": k, "value": v, "step": step, "timestamp": now}) + "\n")
        for k, v in new.items():
            self.present.add((k, step))
            self.pending.append(Metric(k, v, now, step))
        if len(self.pending) > MAX_PENDING:
            del self.pending[:len(self.pending) - MAX_PENDING]
        self.send()

    def send(self, force: bool = False) -> bool:
        """Send what is pending; False when the server did not take it (kept for later).
        While the server is away, tries at most every RETRY_EVERY_S unless `force`d."""
        if not self.pending:
            return True
        if self.failing_since is not None and not force \
                and self.clock() - self.last_try < RETRY_EVERY_S:
            return False
        self.last_try = self.clock()
        try:
            while self.pending:
                chunk = self.pending[:BATCH]
                self.client.log_batch(self.run_id, metrics=chunk)
                del self.pending[:len(chunk)]
        except Exception as e:
            self.cause = _one_line(e)
            if self.failing_since is None:
                self.failing_since = self.clock()
                log.warning("MLflow metric logging to %s failed (training continues; the points "
                            "are kept and sent again): %s", self.uri, self.cause)
            return False
        if self.failing_since is not None:
            log.warning("MLflow metric logging to %s works again after %.0f s", self.uri,
                        self.clock() - self.failing_since)
            self.failing_since = None
        return True

    def safe_point(self, where: str) -> None:
        """After a checkpoint: send what is pending; TrackingLost when the server has been
        away for longer than the outage budget."""
        if self.send(force=True):
            return
        if self.clock() - self.failing_since >= self.outage_s:
            raise self.lost(f"training stopped {where}")

    def drain(self, what: str, sleep=time.sleep) -> None:
        """Send everything pending, waiting for the server up to the outage budget (nothing
        is left to train meanwhile); TrackingLost saying `what` if it does not come back."""
        while not self.send(force=True):
            if self.clock() - self.failing_since >= self.outage_s:
                raise self.lost(what)
            sleep(min(RETRY_EVERY_S, self.outage_s))

    def lost(self, what: str) -> TrackingLost:
        away = 0.0 if self.failing_since is None else self.clock() - self.failing_since
        return TrackingLost(
            f"the tracking server {self.uri} has not answered for {away:.0f} s "
            f"({self.cause}); {what}; {len(self.pending)} metric points wait in "
            f"{self.journal_path}: once the server is back, the same command with --run-dir "
            f"{self.journal_path.parent} --resume sends them and continues")
