"""Checks made before any work, from the config alone (no data read, no encoder loaded): the
folders are writable, the disk has room for what the run will write, and `--resume` has a
readable checkpoint to continue. A pipeline runs them before validation, so a run that cannot
finish stops in seconds, in one line, instead of after validation, tokenization and a baseline.

The disk estimate is deliberately not an upper bound: reviews are counted at the mean length
measured on IMDB (``MEAN_TOKENS``, capped by ``max_length``), so a run that fits is never
refused; the exact check, from the real token counts, still runs before the encoder does
(``loop.check_disk_space``).
"""

from __future__ import annotations

import json
from pathlib import Path

from sentiment.training import run_folder

# IMDB's original splits: 25,000 training reviews (split into train and validation by
# train_fraction) and 25,000 test reviews.
IMDB_TRAIN_ROWS = 25_000
IMDB_TEST_ROWS = 25_000
# Mean tokens per review under a 256-token cap, from the state cache of the quick preset
# (160 MB per 1,000 reviews at hidden size 384 in fp16); longer caps keep this as a floor.
MEAN_TOKENS = 208
TOKEN_BYTES = 8     # one token id in the `datasets` cache (int64)
TEXT_BYTES = 1_300  # one review's text in the test predictions (IMDB's mean, ~1,300 characters)


def split_rows(cfg) -> dict[str, int]:
    train = int(IMDB_TRAIN_ROWS * cfg.train_fraction)
    sizes = {"train": train, "valid": IMDB_TRAIN_ROWS - train, "test": IMDB_TEST_ROWS}
    caps = {"train": cfg.max_train, "valid": cfg.max_valid, "test": cfg.max_test}
    return {k: min(n, caps[k]) if caps[k] else n for k, n in sizes.items()}


def encoder_shape(cfg) -> tuple[int, int, int]:
    """(hidden size, layers, weight bytes) of cfg's encoder, from its config file alone; a Hub
    encoder not on disk counts as bert-base (768, 12, 440 MB)."""
    from sentiment.encoding import encoders
    if cfg.encoder in encoders.RANDOM:
        c = encoders.RANDOM[cfg.encoder]
        hidden, layers = c.get("hidden_size", 768), c.get("num_hidden_layers", 12)
        return hidden, layers, 0
    try:
        spec = encoders.resolve(cfg.encoder, cfg.encoder_revision)
    except ValueError:
        return 768, 12, 440_000_000
    folder = Path(spec.location)
    if not spec.local or not (folder / "config.json").exists():
        return 768, 12, 440_000_000
    c = json.loads((folder / "config.json").read_text())
    weights = sum(p.stat().st_size for p in folder.glob("*.safetensors"))
    return int(c.get("hidden_size", 768)), int(c.get("num_hidden_layers", 12)), weights


def _cached_splits(cfg, rows: dict[str, int]) -> set[str]:
    """The splits whose encoder states the cache already holds for this encoder and size."""
    found = set()
    for manifest in Path(cfg.cache_dir, "states").glob("*/manifest.json"):
        try:
            m = json.loads(manifest.read_text())
        except (OSError, ValueError):
            continue
        if m.get("encoder") == cfg.encoder and rows.get(m.get("split")) == m.get("n_reviews"):
            found.add(m["split"])
    return found


def estimate_bytes(cfg) -> dict:
    """{(label, folder): bytes} the run will write into its cache and run folders."""
    rows = split_rows(cfg)
    hidden, layers, weights = encoder_shape(cfg)
    tokens = {k: n * min(cfg.max_length, MEAN_TOKENS) for k, n in rows.items()}
    cache = sum(tokens.values()) * TOKEN_BYTES
    trained = layers if cfg.train_encoder_layers == -1 else min(cfg.train_encoder_layers, layers)
    if cfg.cache_states and trained < layers:
        cached = _cached_splits(cfg, rows)
        cache += sum(2 * t * hidden for k, t in tokens.items() if k not in cached)
    # Checkpoints: last, previous and one being written, each with the trained weights and
    # Adam's two moments; the best epoch's and the final model's weights once each.
    trained_weights = weights * trained // max(layers, 1) + 4 * 3 * hidden * cfg.hidden_dim * 4
    run = 3 * 3 * trained_weights + 2 * trained_weights + rows["test"] * TEXT_BYTES
    return {("token and encoder-state caches in", cfg.cache_dir): cache,
            ("checkpoints and model in", cfg.run_dir): run}


def check_before_work(cfg, extra: dict | None = None, report=print) -> None:
    """One-line errors before anything runs: a folder that cannot be written
    (run_folder.RunDirError), too little free disk for `estimate_bytes` plus `extra` (what a
    caller adds, e.g. a local model store), a `--resume` without a readable, matching
    checkpoint (checkpoints.ResumeError)."""
    from sentiment.common.files import unwritable_folder
    from sentiment.training.checkpoints import resume_point
    for folder, what in ((cfg.run_dir, "run dir"), (cfg.cache_dir, "cache dir")):
        problem = unwritable_folder(Path(folder))  # nothing is created before the run starts
        if problem:
            raise run_folder.RunDirError(f"{what} {folder} is not writable ({problem}); "
                                         f"choose another --{what.replace(' ', '-')}")
    run_folder.check_space({**estimate_bytes(cfg), **(extra or {})})
    if cfg.resume:
        if run_folder.is_preset_root(cfg):
            run_folder.resolve(cfg)  # the one-line error naming the runs to choose from
        resume_point(cfg.run_dir, cfg, report)
