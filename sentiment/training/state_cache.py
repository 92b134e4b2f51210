"""Encoder-state cache: the frozen encoder's last hidden states, or, when the top layers train,
the hidden states entering the first trained layer; computed once per key.

Layout of one entry (a folder named by its key):
    manifest.json   key inputs, shapes, dtype, sizes, each file's size and SHA-256
    states.npy      float16 [total_tokens, hidden]   (memory-mapped on read)
    offsets.npy     int64   [n_reviews + 1]          review i is states[offsets[i]:offsets[i+1]]
The folder is built under a temp name and renamed into place, so readers never see half an entry;
the temp name carries the builder's pid, and the temp folders of builders that died are removed
by the next lookup.

Every hit is checked before it is served: the manifest's shapes against the arrays, each file's
size and checksum against the manifest. A damaged entry (bytes overwritten, a truncated or
unreadable file) is reported in one line naming the file, removed, and built again; with
``rebuild=False`` the lookup raises instead (``checksums.Damaged``), before any training.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from sentiment.common import checksums
from sentiment.common.checksums import Damaged
from sentiment.common.compute import encoder_autocast
from sentiment.common.files import remove_stale_temps, temp_prefix
from sentiment.common.progress import progress as show_progress
from sentiment.data.batching import length_sorted_batches, pad_ids

FORMAT_VERSION = 1
STATES, OFFSETS, MANIFEST = "states.npy", "offsets.npy", "manifest.json"

log = logging.getLogger(__name__)


@dataclass
class StateStore:
    path: Path
    states: np.ndarray   # memmap float16 [total_tokens, hidden]
    offsets: np.ndarray  # int64 [n + 1]
    manifest: dict

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def batch(self, indices, dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
        """Padded [B, T, H] states and lengths for the given reviews."""
        lens = self.lengths[indices]
        out = np.zeros((len(indices), int(lens.max()), self.states.shape[1]), dtype=np.float16)
        for row, (i, n) in enumerate(zip(indices, lens)):
            out[row, :n] = self.states[self.offsets[i]:self.offsets[i] + n]
        return torch.from_numpy(out).to(dtype), torch.from_numpy(lens.astype(np.int64))


def cache_key(encoder_id: str, tokens_fingerprint: str, precision: str,
              layer: int | None = None) -> str:
    """`layer`: the states entering that layer; None for the encoder's output (the key of the
    frozen encoder's entries, unchanged since before layers could train)."""
    at = "" if layer is None else f"|layer={layer}"
    return hashlib.sha256(f"v{FORMAT_VERSION}|enc={encoder_id}|tok={tokens_fingerprint}|"
                          f"prec={precision}{at}".encode()).hexdigest()[:20]


def entry_path(cache_dir: str | Path, key: str) -> Path:
    return Path(cache_dir) / "states" / key


def is_cached(cache_dir: str | Path, key: str) -> bool:
    return (entry_path(cache_dir, key) / MANIFEST).exists()


def expected_bytes(n_tokens: int, n_reviews: int, hidden: int) -> int:
    """The size of one entry on disk: fp16 states, int64 offsets, headers and manifest."""
    return 2 * n_tokens * hidden + 8 * (n_reviews + 1) + 64 * 1024


def open_store(path: Path) -> StateStore:
    manifest = json.loads((path / MANIFEST).read_text())
    return StateStore(path, np.load(path / STATES, mmap_mode="r"),
                      np.load(path / OFFSETS), manifest)


def checked_store(path: Path, key: str) -> StateStore:
    """The entry at `path`, once its files match their recorded sizes and checksums and its
    arrays the recorded shapes; Damaged (one line naming the file) otherwise."""
    try:
        manifest = json.loads((path / MANIFEST).read_text())
        files = manifest["files"]
        n, total, hidden = manifest["n_reviews"], manifest["n_tokens"], manifest["hidden_size"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise Damaged(f"{path / MANIFEST} is unreadable or records no checksums "
                      f"({' '.join(str(e).split())[:80]})") from None
    if manifest.get("key") != key:
        raise Damaged(f"{path / MANIFEST} is the manifest of entry {manifest.get('key')}")
    for name in (STATES, OFFSETS):
        checksums.check(path / name, files.get(name, {}))
    try:
        store = StateStore(path, np.load(path / STATES, mmap_mode="r"),
                           np.load(path / OFFSETS), manifest)
    except (OSError, ValueError) as e:
        raise Damaged(f"{path}: unreadable arrays ({' '.join(str(e).split())[:80]})") from None
    if (store.states.shape != (total, hidden) or store.offsets.shape != (n + 1,)
            or int(store.offsets[-1]) != total):
        raise Damaged(f"{path / STATES}: shapes {store.states.shape} and {store.offsets.shape} "
                      f"differ from the recorded ({total}, {hidden}) and ({n + 1},)")
    return store


def discard(path: Path) -> None:
    """Remove a damaged entry: renamed away first (one rename, so a reader sees it whole or
    not at all), then deleted."""
    gone = path.with_name(f"{temp_prefix(path.name)}damaged")
    try:
        os.rename(path, gone)
    except FileNotFoundError:  # another process removed it first
        return
    shutil.rmtree(gone, ignore_errors=True)


@torch.inference_mode()
def encode_batch(encoder, ids: torch.Tensor, mask: torch.Tensor, device, precision: str,
                 layer: int | None = None) -> torch.Tensor:
    """The encoder's output, or hidden_states[layer] (embeddings + layers [0, layer))."""
    from sentiment.model.encoder_layers import states_entering
    with encoder_autocast(device, precision):
        if layer is None:
            return encoder(input_ids=ids.to(device), attention_mask=mask.to(device))[0]
        return states_entering(encoder, ids.to(device), mask.to(device), layer)


def get_or_build(encoder, tokens, *, encoder_id: str, cache_dir: str | Path, device,
                 precision: str, pad_id: int, token_budget: int = 8192, progress: bool = False,
                 name: str = "split", meta: dict | None = None,
                 layer: int | None = None, rebuild: bool = True) -> tuple[StateStore, dict]:
    """The cached states for a TokenizedSplit; built (and timed) on a miss. Returns (store, info).
    `layer`: cache the states entering that encoder layer instead of the encoder's output.
    A hit is checked first (``checked_store``); a damaged entry is removed and built again, or,
    with `rebuild` off, raises Damaged."""
    key = cache_key(encoder_id, tokens.fingerprint, precision, layer)
    final = entry_path(cache_dir, key)
    remove_stale_temps(final.parent)  # builds killed mid-way: their pid is gone
    rebuilt = None
    if (final / MANIFEST).exists():
        t0 = time.perf_counter()
        try:
            store = checked_store(final, key)
        except Damaged as e:
            if not rebuild:
                raise Damaged(f"encoder-state cache: {e}; remove it or allow rebuilding") \
                    from None
            log.warning("encoder-state cache: %s; the entry is removed and built again", e)
            discard(final)
            rebuilt = str(e)
        else:
            return store, {"hit": True, "seconds": 0.0, "key": key, "path": str(final),
                           "check_seconds": time.perf_counter() - t0}
    t0 = time.perf_counter()
    lengths = tokens.lengths
    total = int(lengths.sum())
    hidden = encoder.config.hidden_size
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(key), dir=final.parent))
    try:
        offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        states = np.lib.format.open_memmap(tmp / STATES, mode="w+", dtype=np.float16,
                                           shape=(total, hidden))
        batches = length_sorted_batches(lengths, token_budget=token_budget)
        for idx in show_progress(batches, f"encode {name}", progress):
            ids, mask = pad_ids([tokens.input_ids[i] for i in idx], pad_id)
            out = encode_batch(encoder, ids, mask, device, precision, layer).to(
                "cpu", torch.float16).numpy()
            for row, i in enumerate(idx):
                states[offsets[i]:offsets[i + 1]] = out[row, :lengths[i]]
        states.flush()
        del states
        np.save(tmp / OFFSETS, offsets)
        seconds = time.perf_counter() - t0
        manifest = {"format": FORMAT_VERSION, "key": key, "encoder_id": encoder_id,
                    "tokens_fingerprint": tokens.fingerprint, "precision": precision,
                    "layer": layer, "n_reviews": len(lengths), "n_tokens": total,
                    "hidden_size": hidden,
                    "dtype": "float16", "seconds": seconds,
                    "bytes": (tmp / STATES).stat().st_size,
                    "files": {f: checksums.record(tmp / f) for f in (STATES, OFFSETS)},
                    **(meta or {})}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2))
        try:
            os.rename(tmp, final)
        except OSError:
            if not (final / MANIFEST).exists():  # not a concurrent builder winning the race
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    info = {"hit": False, "seconds": seconds, "key": key, "path": str(final),
            "tokens_per_s": total / max(seconds, 1e-9)}
    if rebuilt:
        info["rebuilt"] = rebuilt
    return open_store(final), info
