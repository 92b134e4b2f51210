"""Review → token ids, with the homework's truncation (or head+tail), cached with HF `datasets`.

The cache is keyed by an explicit fingerprint (tokenizer vocab hash, max length, truncation,
the split's content hash): `datasets` cannot hash a tokenizer stably by itself.

Beside each cache file, ``<file>.sum.json`` records its size, SHA-256 and row count, written
once the file is complete. A cache file that does not match it (overwritten, truncated,
unreadable, or without a record) is reported in one line naming it, removed and tokenized
again; with ``rebuild=False`` that raises ``checksums.Damaged`` instead.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from sentiment.common import checksums
from sentiment.common.checksums import Damaged
from sentiment.common.files import atomic_write_text
from sentiment.encoding.encoders import tokenizer_hash

log = logging.getLogger(__name__)


@dataclass
class TokenizedSplit:
    input_ids: list  # one int array per review, [CLS] ... [SEP] included
    labels: np.ndarray
    fingerprint: str
    cache_file: str | None = None  # the `datasets` cache file, when one is used
    cache_hit: bool = False
    seconds: float = 0.0  # time to tokenize, or to read the cache on a hit

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def lengths(self) -> np.ndarray:
        return np.fromiter((len(x) for x in self.input_ids), dtype=np.int64, count=len(self.input_ids))


def truncate(ids: list[int], budget: int, strategy: str) -> list[int]:
    """Keep `budget` tokens: the first ones ('head'), or the first quarter and the end ('head_tail')."""
    if len(ids) <= budget:
        return ids
    if strategy == "head":
        return ids[:budget]
    if strategy == "head_tail":
        n_head = budget // 4
        return ids[:n_head] + ids[len(ids) - (budget - n_head):]
    raise ValueError(f"unknown truncation strategy {strategy!r}; use 'head' or 'head_tail'")


def encode_texts(tokenizer, texts: list[str], max_length: int, strategy: str = "head") -> list[list[int]]:
    """Batched fast tokenization; [CLS] + at most max_length-2 tokens + [SEP]."""
    if max_length < 3:
        raise ValueError(f"max_length must leave room for [CLS] and [SEP], got {max_length}")
    budget = max_length - 2
    # Tokenize in full (no truncation) so head_tail can see the end of long reviews.
    enc = tokenizer(list(texts), add_special_tokens=False, truncation=False,
                    return_attention_mask=False, return_token_type_ids=False, verbose=False)
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    return [[cls] + truncate(ids, budget, strategy) + [sep] for ids in enc["input_ids"]]


def frame_hash(df: pd.DataFrame) -> str:
    h = hashlib.sha256()
    for t in df["text"]:
        h.update(t.encode("utf-8", "surrogatepass"))
        h.update(b"\0")
    h.update(np.ascontiguousarray(df["label"].to_numpy(dtype=np.int64)).tobytes())
    return h.hexdigest()[:16]


def fingerprint(tok_hash: str, max_length: int, strategy: str, data_hash: str) -> str:
    return hashlib.sha256(f"tok={tok_hash}|len={max_length}|trunc={strategy}|data={data_hash}"
                          .encode()).hexdigest()[:16]


def tokenize_frame(df: pd.DataFrame, tokenizer, max_length: int, strategy: str,
                   cache_dir: str | Path | None = None, name: str = "split",
                   tok_hash: str | None = None, rebuild: bool = True) -> TokenizedSplit:
    """`tok_hash`: the tokenizer's `tokenizer_hash`, when the caller has it already. `rebuild`:
    a damaged cache file is removed and tokenized again (off: Damaged is raised)."""
    t0 = time.perf_counter()
    fp = fingerprint(tok_hash or tokenizer_hash(tokenizer), max_length, strategy, frame_hash(df))
    if cache_dir is not None:
        try:
            import datasets  # noqa: F401  (optional: training runs without it, uncached)
        except ImportError:
            cache_dir = None
    if cache_dir is None:
        ids = encode_texts(tokenizer, df["text"].tolist(), max_length, strategy)
        out = TokenizedSplit([np.asarray(x, dtype=np.int32) for x in ids],
                             df["label"].to_numpy(np.int64), fp)
    else:
        out = _tokenize_with_datasets(df, tokenizer, max_length, strategy, Path(cache_dir), name,
                                      fp, rebuild)
    out.seconds = time.perf_counter() - t0
    return out


def record_path(cache_file: Path) -> Path:
    return cache_file.with_name(cache_file.name + ".sum.json")


def check_cache_file(cache_file: Path, rows: int) -> None:
    """Damaged (naming the file) unless `cache_file` matches its record and holds `rows` rows."""
    try:
        recorded = json.loads(record_path(cache_file).read_text())
    except FileNotFoundError:
        raise Damaged(f"{cache_file} has no checksum record (written before caches kept one, "
                      "or by a tokenization that did not finish)") from None
    except (OSError, ValueError) as e:
        raise Damaged(f"{record_path(cache_file)} is unreadable ({e})") from None
    if recorded.get("rows") != rows:
        raise Damaged(f"{cache_file} records {recorded.get('rows')} rows, the split has {rows}")
    checksums.check(cache_file, recorded)


def discard_cache_file(cache_file: Path) -> None:
    for p in (record_path(cache_file), cache_file):
        p.unlink(missing_ok=True)


def _load_or_map(ds, tokenizer, max_length, strategy, cache_file: Path, name, fp):
    import datasets
    progress = datasets.utils.logging.is_progress_bar_enabled()
    datasets.utils.logging.disable_progress_bar()
    try:
        return ds.map(
            lambda batch: {"input_ids": encode_texts(tokenizer, batch["text"], max_length, strategy)},
            batched=True, batch_size=1000, remove_columns=["text"],
            cache_file_name=str(cache_file), new_fingerprint=fp, load_from_cache_file=True,
            desc=f"tokenize {name}",
        )
    finally:
        if progress:
            datasets.utils.logging.enable_progress_bar()


def _tokenize_with_datasets(df, tokenizer, max_length, strategy, cache_dir: Path, name, fp,
                            rebuild: bool = True):
    import datasets
    cache_dir.mkdir(parents=True, exist_ok=True)
    cache_file = cache_dir / f"tokens-{name}-{fp}.arrow"
    hit = cache_file.exists()
    if hit:
        try:
            check_cache_file(cache_file, len(df))
        except Damaged as e:
            if not rebuild:
                raise Damaged(f"token cache: {e}; remove it or allow rebuilding") from None
            log.warning("token cache: %s; the file is removed and tokenized again", e)
            discard_cache_file(cache_file)
            hit = False
    ds = datasets.Dataset.from_pandas(df[["text", "label"]], preserve_index=False)
    ds = _load_or_map(ds, tokenizer, max_length, strategy, cache_file, name, fp)
    if not hit:  # the file is complete now: record what it holds
        atomic_write_text(record_path(cache_file),
                          json.dumps({**checksums.record(cache_file), "rows": len(df)}) + "\n")
    log.info("tokenize %s: %s (%s)", name, "cache hit" if hit else "computed", cache_file)
    col = ds.with_format("numpy")["input_ids"]
    ids = [np.asarray(x, dtype=np.int32) for x in col]
    return TokenizedSplit(ids, np.asarray(ds["label"], dtype=np.int64), fp, str(cache_file), hit)


def tokenize_splits(splits, tokenizer, cfg, cache: bool = True) -> dict[str, TokenizedSplit]:
    cache_dir = Path(cfg.cache_dir) / "tokens" if cache else None
    tok_hash = tokenizer_hash(tokenizer)  # ~0.14 s for a 30k vocab: once, not per split
    return {name: tokenize_frame(df, tokenizer, cfg.max_length, cfg.truncation, cache_dir, name,
                                 tok_hash, rebuild=cfg.rebuild_damaged_caches)
            for name, df in splits.items()}


def warm_cache(cfg) -> dict:
    """Fill the token cache for cfg's splits, so that training reads its tokens from it.

    Training tokenizes through the same cache (``tokenize_splits``) and finds these entries by
    fingerprint; this stage only makes that a hit and reports what it did: a small JSON-able
    dict (cache files, fingerprints, sizes, hit or miss, seconds).
    """
    from sentiment.data.imdb import load_splits
    from sentiment.encoding.encoders import load_tokenizer, resolve
    t0 = time.perf_counter()
    splits = load_splits(cfg)
    tokenizer = load_tokenizer(resolve(cfg.encoder, cfg.encoder_revision))
    out: dict = {"splits": {}}
    for name, tok in tokenize_splits(splits, tokenizer, cfg).items():
        out["splits"][name] = {"cache_file": tok.cache_file, "fingerprint": tok.fingerprint,
                               "rows": len(tok), "tokens": int(tok.lengths.sum()),
                               "cache_hit": tok.cache_hit, "seconds": tok.seconds}
    out["seconds"] = time.perf_counter() - t0
    out["cache_hit"] = all(s["cache_hit"] for s in out["splits"].values())
    return out
