"""A run's own folder: a new one per run unless the user names one, held by one process at a
time, and checked writable and big enough before any expensive work starts.

Left at its preset's value (``runs/<preset>``), ``run_dir`` is the parent of the run's folder:
each run creates ``runs/<preset>/<YYYYmmdd-HHMMSS>-<6 hex>`` exclusively, so two runs at once
never share checkpoints, model or metrics; ``runs/<preset>/latest`` points at the newest
finished one. A folder the user names is used as given, under an exclusive lock
(``.run.lock``, released by the kernel when the process dies, so a kill leaves no stale lock).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from sentiment.common.files import remove_stale_temps, temp_prefix, unwritable_folder
from sentiment.config import PRESETS, default
from sentiment.model import model_folder
from sentiment.training.checkpoints import ResumeError, interrupted_run, resume_point

try:
    import fcntl
except ImportError:  # not POSIX: runs are not locked, unique folders still keep them apart
    fcntl = None

LOCK = ".run.lock"   # in run_dir: held (flock) by the process writing the run
LATEST = model_folder.LATEST  # in a preset's folder: link to the newest finished run
RUN_NAME = re.compile(r"^\d{8}-\d{6}-[0-9a-f]{6}$")


class RunDirError(RuntimeError):
    """The run folder cannot be used: held by another run, unwritable, or too small."""


def preset_root(cfg) -> Path:
    """Where the preset's runs live: its `run_dir` value (``runs/<preset>``)."""
    return Path(PRESETS.get(cfg.preset, {}).get("run_dir", default("run_dir")))


def is_preset_root(cfg) -> bool:
    """True when `cfg.run_dir` was left at the preset's value: the run gets a folder of its own."""
    return Path(cfg.run_dir) == preset_root(cfg)


def new_run_dir(root: str | Path) -> Path:
    """A new, empty folder `root/<YYYYmmdd-HHMMSS>-<6 hex>`, created exclusively."""
    root = Path(root)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RunDirError(f"cannot create run folder under {root}: {e.strerror or e}") from None
    for _ in range(100):
        path = root / f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
        except OSError as e:
            raise RunDirError(f"cannot create run folder under {root}: {e.strerror or e}") from None
    raise RunDirError(f"cannot create a new run folder under {root}")


def newest_run(root: str | Path) -> Optional[Path]:
    root = Path(root)
    if not root.is_dir():
        return None
    runs = [p for p in root.iterdir() if p.is_dir() and RUN_NAME.match(p.name)]
    # By the start second in the name, then by the folder's time within that second.
    return max(runs, key=lambda p: (p.name[:15], p.stat().st_mtime_ns), default=None)


def resolve(cfg):
    """`cfg` with `run_dir` naming this run's own folder: a new one under the preset's folder
    when the user named none. `--resume` must name the run it continues."""
    if not is_preset_root(cfg):
        return cfg
    root = preset_root(cfg)
    if cfg.resume:
        newest = newest_run(root)
        hint = f"; the newest run there is --run-dir {newest}" if newest else ""
        raise ResumeError(f"--resume needs --run-dir naming the run to continue (each run has "
                          f"its own folder under {root}){hint}")
    return cfg.replace(run_dir=str(new_run_dir(root)))


def point_latest(run_dir: str | Path) -> None:
    """Make `<parent>/latest` point at `run_dir` (a link swapped in one rename)."""
    run_dir = Path(run_dir)
    link = run_dir.parent / LATEST
    tmp = run_dir.parent / f"{temp_prefix(LATEST)}link.tmp"
    try:
        tmp.unlink(missing_ok=True)
        os.symlink(run_dir.name, tmp, target_is_directory=True)
        os.replace(tmp, link)
    except OSError:  # no symlinks here: the folders are still there, by date
        tmp.unlink(missing_ok=True)


def check_writable(folder: str | Path, what: str) -> None:
    """Create `folder` if needed and check files can be written in it; a one-line RunDirError
    if not."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        problem = unwritable_folder(folder)
    except OSError as e:
        problem = f"{folder} cannot be created ({e.strerror or e})"
    if problem:
        raise RunDirError(f"{what} {folder} is not writable ({problem}); "
                          f"choose another --{what.replace(' ', '-')}")


def _existing_parent(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_space(needs: dict) -> None:
    """`needs`: {(label, folder): bytes}. Folders on one file system add up; a one-line
    RunDirError names each folder short of space, its free and needed megabytes."""
    by_device: dict = {}
    for (label, folder), n in needs.items():
        where = _existing_parent(Path(folder))
        dev = where.stat().st_dev
        entry = by_device.setdefault(dev, {"where": where, "need": 0, "labels": []})
        entry["need"] += n
        entry["labels"].append(f"{label} {folder} ~{n / 1e6:.0f} MB")
    short = []
    for e in by_device.values():
        free = shutil.disk_usage(e["where"]).free
        # 10% slack for what the estimate leaves out (file system overhead, logs).
        if free < e["need"] * 1.1:
            short.append(f"{', '.join(e['labels'])} but {free / 1e6:.0f} MB free on {e['where']}")
    if short:
        raise RunDirError("not enough free disk space for this run: needs " + "; ".join(short)
                          + "; free some space or choose another --cache-dir / --run-dir")


@dataclass
class _Held:
    fd: int
    thread: int
    count: int
    resume_from: Optional[Path] = None


_held: dict[Path, _Held] = {}
_held_guard = threading.Lock()


def _lock_owner(path: Path) -> str:
    try:
        return path.read_text().strip() or "another process"
    except OSError:
        return "another process"


@contextlib.contextmanager
def _hold(run_dir: Path) -> Iterator[bool]:
    """Hold `run_dir`'s lock; re-entrant in one thread. Yields True to the outermost holder."""
    key = run_dir.resolve()
    with _held_guard:
        held = _held.get(key)
        if held is not None:
            if held.thread != threading.get_ident():
                raise RunDirError(f"run dir {run_dir} is in use by another run in this process")
            held.count += 1
    if held is None:
        fd = os.open(key / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                raise RunDirError(f"run dir {run_dir} is in use by another run "
                                  f"({_lock_owner(key / LOCK)}); wait for it to end, or choose "
                                  "another --run-dir") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()} since "
                     f"{time.strftime('%Y-%m-%dT%H:%M:%S%z')}\n".encode())
        held = _Held(fd, threading.get_ident(), 1)
        with _held_guard:
            _held[key] = held
    try:
        yield held.count == 1
    finally:
        with _held_guard:
            held.count -= 1
            if held.count == 0:
                del _held[key]
                os.close(held.fd)  # releases the flock


def checked_resume_point(run_dir: str | Path) -> Optional[Path]:
    """The checkpoint `owned` chose for --resume, while this thread holds the run."""
    held = _held.get(Path(run_dir).resolve())
    return held.resume_from if held is not None else None


@contextlib.contextmanager
def owned(cfg, report=print) -> Iterator:
    """Own the run's folder for the block: yields `cfg` with `run_dir` resolved (see
    `resolve`). The outermost call checks, before any data or encoder is loaded, that the
    run and cache folders are writable, that `--resume` has a readable checkpoint to continue
    (falling back to the previous generation with a note), and that a fresh run does not
    overwrite an interrupted one; it removes the temp files of killed writers. Nested calls
    in the same thread (a tracked run around the training) only re-enter."""
    new_folder = is_preset_root(cfg)
    made_here = new_folder or not Path(cfg.run_dir).exists()
    cfg = resolve(cfg)
    run_dir = Path(cfg.run_dir)
    if new_folder:  # the one place the user learns what --run-dir a --resume would need
        report(f"Run folder: {run_dir}")
    outermost = False
    try:
        check_writable(run_dir, "run dir")
        with _hold(run_dir) as outermost:
            if outermost:
                remove_stale_temps(run_dir, recursive=True, owned=True)
                check_writable(cfg.cache_dir, "cache dir")
                if cfg.resume:
                    _held[run_dir.resolve()].resume_from = resume_point(run_dir, cfg, report)
                else:
                    state = interrupted_run(run_dir)
                    if state is not None:
                        raise RunDirError(
                            f"run dir {run_dir} holds an interrupted run (epoch "
                            f"{state['epoch']} of {state['config'].get('epochs')}): continue it "
                            "with --resume, or leave --run-dir out for a new folder")
            yield cfg
    except BaseException:
        if made_here and outermost:
            remove_if_empty(run_dir)
        raise


def remove_if_empty(run_dir: Path) -> None:
    """A folder this run made and wrote nothing into (a check failed): leave none behind."""
    with contextlib.suppress(OSError):
        if set(os.listdir(run_dir)) <= {LOCK}:
            (run_dir / LOCK).unlink(missing_ok=True)
            run_dir.rmdir()
