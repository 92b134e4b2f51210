"""The scoring manifest: which input, by content, was scored by which model version, into which
file, by which run. It makes a folder output incremental and exactly-once.

It lives in the output folder, ``<output>/_manifest/``: one JSON record per (input content,
model version), written atomically, and one lock file per input content.

- An input is known by the SHA-256 of its bytes: a file renamed is not scored again, a file
  changed in place is.
- A run *claims* an input by holding an exclusive ``flock`` on its lock file for as long as it
  works on it; a second run at the same time finds it held and leaves the file alone. A killed
  run's locks go with its process.
- Before scoring, the run writes a ``claimed`` record naming the output file it will write; the
  output is written atomically, then the record becomes ``scored`` (rows, run id). A retry of a
  run killed between the two finds the output complete and adopts it; one killed earlier
  finds no output and scores the file again: every row lands in exactly one file.
- A file that cannot be read is recorded ``failed`` with the reason; it is not tried again
  until its content changes (or a re-score).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from sentiment.common.files import atomic_write_text

MANIFEST_DIR = "_manifest"
SCORED, CLAIMED, FAILED = "scored", "claimed", "failed"
PARTITION = "date={date}"  # the folder of a day's scores, as Hive-style readers expect
_CHUNK = 1 << 20


def content_hash(path: str | Path) -> str:
    """SHA-256 of the file's bytes (hex)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def version_key(model_version: Optional[int], model_uri: str) -> str:
    """What a record is keyed by besides the content: `v<N>`, or a short hash of a run URI."""
    if model_version is not None:
        return f"v{int(model_version)}"
    return "u" + hashlib.sha256(model_uri.encode()).hexdigest()[:12]


def output_name(input_path: str | Path, sha: str, vkey: str, date: str) -> str:
    """The output of one input, relative to the output folder:
    date=YYYY-MM-DD/<input stem>-<hash prefix>-<version key>.parquet."""
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", Path(input_path).stem)[:80] or "input"
    return f"{PARTITION.format(date=date)}/{stem}-{sha[:12]}-{vkey}.parquet"


@dataclass
class Pending:
    """An input the run should score: its path, content hash and size."""

    path: str
    sha256: str
    bytes: int

    def to_dict(self) -> dict:
        return {"path": self.path, "sha256": self.sha256, "bytes": self.bytes}


class Manifest:
    """The records and locks of one output folder."""

    def __init__(self, output: str | Path):
        self.root = Path(output)
        self.dir = self.root / MANIFEST_DIR

    # ------------------------------------------------------------------ records
    def record_path(self, sha: str, vkey: str) -> Path:
        return self.dir / f"{sha}.{vkey}.json"

    def read(self, sha: str, vkey: str) -> Optional[dict]:
        p = self.record_path(sha, vkey)
        try:
            return json.loads(p.read_text())
        except FileNotFoundError:
            return None

    def records(self) -> list[dict]:
        """Every record, oldest first."""
        if not self.dir.is_dir():
            return []
        out = []
        for p in self.dir.glob("*.json"):
            with contextlib.suppress(FileNotFoundError, json.JSONDecodeError):
                out.append(json.loads(p.read_text()))
        return sorted(out, key=lambda r: r.get("updated", 0))

    def write(self, record: dict) -> dict:
        record = {**record, "updated": time.time()}
        self.dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.record_path(record["sha256"], record["version_key"]),
                          json.dumps(record, indent=1, sort_keys=True))
        return record

    def done(self, sha: str, vkey: str, rescore: bool) -> Optional[dict]:
        """The record that makes this content need no scoring now, or None. Without `rescore`
        any version's scored (or failed) record counts; with it, only this version's."""
        if rescore:
            r = self.read(sha, vkey)
            return r if r and r["status"] in (SCORED, FAILED) else None
        for p in self.dir.glob(f"{sha}.*.json") if self.dir.is_dir() else []:
            with contextlib.suppress(FileNotFoundError, json.JSONDecodeError):
                r = json.loads(p.read_text())
                if r["status"] in (SCORED, FAILED):
                    return r
        return None

    # ------------------------------------------------------------------ claims
    @contextlib.contextmanager
    def claim(self, sha: str) -> Iterator[bool]:
        """Hold the input's lock for the block; yields False (holding nothing) when another run
        holds it now."""
        import fcntl
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.dir / f"{sha}.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                os.ftruncate(fd, 0)  # who holds it, for a person; the lock is the flock
                os.write(fd, f"{socket.gethostname()} pid {os.getpid()}\n".encode())
                yield True
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


def plan_inputs(manifest: Manifest, files: list[str], vkey: str,
                rescore: bool) -> tuple[list[Pending], list[dict]]:
    """(the inputs to score, in order; the ones already done, each {path, sha256, status,
    output, model_version}). A file whose content another listed file repeats is scored once."""
    todo, done, seen = [], [], set()
    for f in files:
        sha = content_hash(f)
        if sha in seen:
            done.append({"path": f, "sha256": sha, "status": "duplicate of a listed file"})
            continue
        seen.add(sha)
        r = manifest.done(sha, vkey, rescore)
        if r is None:
            todo.append(Pending(str(f), sha, os.path.getsize(f)))
        else:
            done.append({"path": f, "sha256": sha, "status": r["status"],
                         "output": r.get("output"), "model_version": r.get("model_version")})
    return todo, done


def adoptable(manifest: Manifest, record: Optional[dict]) -> Optional[dict]:
    """A `claimed` record whose output file is complete (a run killed after writing it but
    before recording it): the record to finish instead of scoring again."""
    if not record or record["status"] != CLAIMED or not record.get("output"):
        return None
    out = manifest.root / record["output"]
    if not out.is_file():
        return None
    import pyarrow.parquet as pq
    try:
        rows = pq.read_metadata(out).num_rows
    except Exception:
        return None  # not a whole parquet file (written atomically, so never expected)
    return {**record, "rows": rows} if rows == record.get("expected_rows", rows) else None
