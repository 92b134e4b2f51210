"""Files written whole or not at all: atomic replacement, temp names that say who wrote them,
cleanup of a killed writer's leftovers, and the writable-folder check."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

# Temp files and folders carry their writer's pid and host, so a later run can tell the
# leftovers of a killed writer (pid gone on this host) from a write in progress, here or on
# another machine sharing the folder: ".<name>.pid<N>.<host>.<random>.tmp".
TEMP_PID = re.compile(r"^\..*\.pid(\d+)\.([A-Za-z0-9-]+)\.[^/]*$")


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:40] or "host"


def temp_prefix(name: str) -> str:
    return f".{name}.pid{os.getpid()}.{_host()}."


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def remove_stale_temps(folder: str | Path, recursive: bool = False,
                       owned: bool = False) -> list[Path]:
    """Delete the temp files and folders (named by temp_prefix) in `folder` whose writer, on
    this host, is no longer running; returns what was removed. Other hosts' temps are left
    alone (their pids mean nothing here). `owned`: this process holds the folder alone (a run
    directory's lock), so temp files without a pid (older versions') go too."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for p in (folder.rglob(".*") if recursive else folder.glob(".*")):
        m = TEMP_PID.match(p.name)
        if m is None:
            if not (owned and p.name.endswith(".tmp") and p.is_file()):
                continue
        elif (m.group(2) != _host() or int(m.group(1)) == os.getpid()
              or pid_alive(int(m.group(1)))):
            continue
        try:
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink()
            removed.append(p)
        except FileNotFoundError:  # another process cleaned it first
            pass
    return removed


def fsync_file(path: str | Path) -> None:
    """Flush a finished file to disk before it is renamed into place: a rename that reaches the
    disk before the data would leave an empty file after a power cut."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temp path beside `target`; on success it replaces `target` in one rename.

    A crash mid-write leaves the previous file intact instead of a truncated one, and a temp
    named after this process (see remove_stale_temps).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(target.name), suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        fsync_file(tmp_path)
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def atomic_write_text(target: str | Path, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text)


def unwritable_folder(folder: Path) -> str | None:
    """Why files cannot be created in `folder` (or, while it does not exist yet, in its nearest
    existing ancestor, where it would be made); None when they can."""
    existing = Path(folder)
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is not a folder"
    try:  # a real write, not os.access: that says yes to root on a read-only file system
        with tempfile.TemporaryFile(dir=existing, prefix=".probe-"):
            pass
    except OSError as e:
        return f"folder {existing} is not writable ({e.strerror or e})"
    return None

