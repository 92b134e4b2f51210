"""One promoter at a time per registered model, across processes and machines.

A promotion reads the champion, decides, then moves the alias; two promoters interleaving
those steps can both "win" or leave the worse version as champion. The lock serialises them:

- a SQLite or file store: an exclusive ``fcntl`` lock on a file beside the store
  (``<store folder>/.locks/promote-<model>.lock``), which every process on the machine (and
  every machine mounting that folder with working POSIX locks) sees;
- an HTTP store: a lease tag on the registered model (``promotion.lease`` =
  ``<owner> <expiry>``), taken by compare-and-set: write the tag, wait for other writers to
  settle, read it back and own it only if it is still ours. A lease expires, so a promoter
  killed while holding it blocks the next one for at most ``LEASE_S`` seconds.

The lease is not a consensus protocol; the registry's compare-and-set on the alias
(``champion.promote``) is what keeps the outcome right if two promoters ever overlap.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from sentiment.tracking.store import file_store_folder, sqlite_path

LEASE_TAG = "promotion.lease"
LEASE_S = 300.0          # longer than any promotion (re-scoring a champion included)
SETTLE_S = 0.5           # how long other writers of the lease get before we read it back
POLL_S = 0.2


class PromotionBusy(RuntimeError):
    """Another promotion of the same model held the lock for the whole wait."""


def lock_file(store_uri: str, model_name: str) -> Path | None:
    """The lock file of `model_name` beside a local store; None for a remote one."""
    db = sqlite_path(store_uri)
    folder = db.parent if db is not None else file_store_folder(store_uri)
    if folder is None:
        return None
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", model_name).strip("-") or "model"
    return folder / ".locks" / f"promote-{slug}.lock"


@contextlib.contextmanager
def promotion_lock(client, store_uri: str, model_name: str, timeout_s: float) -> Iterator[str]:
    """Hold the promotion lock of `model_name` for the block; yields how it is held."""
    path = lock_file(store_uri, model_name)
    if path is not None:
        with _file_lock(path, model_name, timeout_s):
            yield f"file lock {path}"
    else:
        with _lease(client, model_name, timeout_s):
            yield f"lease tag {LEASE_TAG} on {model_name!r}"


@contextlib.contextmanager
def _file_lock(path: Path, model_name: str, timeout_s: float) -> Iterator[None]:
    import fcntl
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise PromotionBusy(f"another promotion of {model_name!r} held {path} for "
                                        f"{timeout_s:g} s; try again when it has finished") from None
                time.sleep(POLL_S)
        try:
            # Who holds it, for a person looking at a stuck promotion; the lock is the flock.
            os.ftruncate(fd, 0)
            os.write(fd, f"{socket.gethostname()} pid {os.getpid()}\n".encode())
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _lease_holder(client, model_name: str) -> tuple[str, float] | None:
    raw = (client.get_registered_model(model_name).tags or {}).get(LEASE_TAG, "")
    owner, _, expiry = raw.rpartition(" ")
    try:
        return (owner, float(expiry)) if owner else None
    except ValueError:
        return None


@contextlib.contextmanager
def _lease(client, model_name: str, timeout_s: float) -> Iterator[None]:
    me = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    deadline = time.monotonic() + timeout_s
    while True:
        holder = _lease_holder(client, model_name)
        if holder is None or holder[1] < time.time():
            client.set_registered_model_tag(model_name, LEASE_TAG, f"{me} {time.time() + LEASE_S}")
            time.sleep(SETTLE_S)
            holder = _lease_holder(client, model_name)
            if holder is not None and holder[0] == me:
                break
        if time.monotonic() >= deadline:
            who = holder[0] if holder else "another promoter"
            raise PromotionBusy(f"{who} held the promotion lease of {model_name!r} for "
                                f"{timeout_s:g} s; try again when it has finished")
        time.sleep(POLL_S)
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            holder = _lease_holder(client, model_name)
            if holder is not None and holder[0] == me:
                client.delete_registered_model_tag(model_name, LEASE_TAG)
