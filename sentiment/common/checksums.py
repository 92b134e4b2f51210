"""Checksums of the files a cache, a checkpoint or a model folder serves, and the check that
what is read back is what was written.

SHA-256 over whole files: with the CPU's SHA extensions hashlib hashes at about the speed the
file is read (measured 2x faster than BLAKE2b and on a par with CRC32 here); the check at load
costs about one more read of the file. Figures: benchmarks/README.md ("Checking caches at
load").
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

ALGORITHM = "sha256"
CHECKSUMS = "checksums.json"  # in a model folder: every file's size and digest
DIGEST = "tensors_sha256"  # in a safetensors file's metadata: the digest of its tensors


class Damaged(ValueError):
    """A file does not hold what was recorded for it: the one-line reason names the file."""


def file_digest(path: str | Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, ALGORITHM).hexdigest()


def record(path: str | Path) -> dict:
    """What `check` compares later: the file's size and digest."""
    path = Path(path)
    return {"bytes": path.stat().st_size, ALGORITHM: file_digest(path)}


def check(path: str | Path, recorded: dict) -> None:
    """Raise Damaged (naming `path`) unless the file has the recorded size and digest. The size
    is compared first: a truncated file costs a stat, not a read."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise FileNotFoundError(f"{path} is missing") from None
    except OSError as e:
        raise Damaged(f"{path} is unreadable ({e.strerror or e})") from None
    if size != recorded.get("bytes"):
        raise Damaged(f"{path} has {size} bytes, {recorded.get('bytes')} were written")
    try:
        digest = file_digest(path)
    except OSError as e:
        raise Damaged(f"{path} is unreadable ({e.strerror or e})") from None
    if digest != recorded.get(ALGORITHM):
        raise Damaged(f"{path} does not match its {ALGORITHM} checksum (its content changed "
                      "after it was written)")


def tensors_digest(tensors: dict) -> str:
    """One digest of named tensors (names, dtypes, shapes and bytes, in name order): stored in a
    safetensors file's own metadata, so the file vouches for itself."""
    import torch
    h = hashlib.new(ALGORITHM)
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}\0".encode())
        if t.numel():  # bytes whatever the dtype (bf16 has no numpy twin)
            h.update(memoryview(t.reshape(-1).view(torch.uint8).numpy()))
    return h.hexdigest()


def checked_tensors(path: str | Path) -> dict:
    """A safetensors file's tensors, once they match the digest in its metadata (a file written
    before files recorded one is read as is); Damaged, naming the file, otherwise."""
    from safetensors import safe_open
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except FileNotFoundError:
        raise
    except Exception as e:  # noqa: BLE001 - safetensors raises its own error types
        raise Damaged(f"{path} is unreadable ({' '.join(str(e).split())[:100]})") from None
    if DIGEST in meta and tensors_digest(tensors) != meta[DIGEST]:
        raise Damaged(f"{path} does not match its checksum (its tensors changed after it was "
                      "written)")
    return tensors


def seal_folder(folder: str | Path) -> Path:
    """Write `folder`/checksums.json: every file below it (but that one) with size and digest."""
    from sentiment.common.files import atomic_write_text
    folder = Path(folder)
    files = {p.relative_to(folder).as_posix(): record(p) for p in sorted(folder.rglob("*"))
             if p.is_file() and p.name != CHECKSUMS and not p.name.startswith(".")}
    target = folder / CHECKSUMS
    atomic_write_text(target, json.dumps({"algorithm": ALGORITHM, "files": files}, indent=1)
                      + "\n")
    return target


def check_folder(folder: str | Path) -> bool:
    """Check every file `folder`/checksums.json lists (Damaged names the first bad one,
    FileNotFoundError a listed file that is missing). False when the folder has no
    checksums.json (written before folders recorded them): nothing to check against."""
    folder = Path(folder)
    path = folder / CHECKSUMS
    if not path.exists():
        return False
    try:
        listed = json.loads(path.read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise Damaged(f"{path} is unreadable ({' '.join(str(e).split())[:100]})") from None
    for name, recorded in listed.items():
        check(folder / name, recorded)
    return True
