"""IMDB loading (parquet, aclImdb folder or tarball, Hub id), the 70/30 split and subsets.

Every loader returns plain pandas DataFrames with exactly the columns ``text`` (str) and
``label`` (int64, 0 = neg, 1 = pos), so the stages after it never care where data came from.
"""

from __future__ import annotations

import hashlib
import os
import re
import tarfile
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

LABELS = {"neg": 0, "pos": 1}


class DataError(ValueError):
    """The data cannot be used as given; the message says what is wrong and where."""


@dataclass
class Splits:
    train: pd.DataFrame
    valid: pd.DataFrame
    test: pd.DataFrame
    source: str
    fingerprint: str  # hash of the source files (or Hub id + revision) the splits came from

    def items(self):
        return [("train", self.train), ("valid", self.valid), ("test", self.test)]

    def sizes(self) -> dict:
        return {name: len(df) for name, df in self.items()}

    @cached_property
    def test_fingerprint(self) -> str:
        """16 hex digits of a sha256 over the test split's reviews and labels: equal exactly
        when two runs were scored on the same reviews, whatever source, preset or subset
        produced them, so accuracies are compared only where they mean the same thing.

        Row order does not count (accuracy does not depend on it): each row is hashed on its
        own, length-prefixed so no two rows run together, and the sorted row hashes are hashed.
        """
        rows = sorted(hashlib.sha256(b"%d:%d:" % (label, len(raw)) + raw).digest()
                      for raw, label in ((t.encode("utf-8"), int(y)) for t, y in
                                         zip(self.test["text"], self.test["label"])))
        h = hashlib.sha256(b"imdb-test-set-v1:%d:" % len(rows))
        for r in rows:
            h.update(r)
        return h.hexdigest()[:16]


# ---------------------------------------------------------------------------------------
# Sources
# ---------------------------------------------------------------------------------------

def _check_frame(df: pd.DataFrame, where: str) -> pd.DataFrame:
    missing = [c for c in ("text", "label") if c not in df.columns]
    if missing:
        raise DataError(f"{where}: missing column(s) {missing}; found {list(df.columns)} "
                        "(expected 'text' and 'label')")
    df = df[["text", "label"]]
    if len(df) == 0:
        raise DataError(f"{where}: no rows")
    if df["text"].isna().any():
        raise DataError(f"{where}: {int(df['text'].isna().sum())} null value(s) in 'text'")
    if not all(isinstance(t, str) for t in df["text"]):
        raise DataError(f"{where}: column 'text' must hold strings")
    label = df["label"]
    if label.isna().any() or not (pd.api.types.is_integer_dtype(label)
                                  or pd.api.types.is_bool_dtype(label)):
        raise DataError(f"{where}: column 'label' must be integers 0/1, got dtype {label.dtype}")
    bad = sorted(set(label.unique().tolist()) - {0, 1})
    if bad:
        raise DataError(f"{where}: labels outside {{0, 1}}: {bad[:10]}")
    return pd.DataFrame({"text": df["text"].astype(str).to_numpy(),
                         "label": label.astype("int64").to_numpy()})


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except Exception as e:  # pyarrow raises several types for a damaged file
        raise DataError(f"{path}: not a readable parquet file ({type(e).__name__}: {e})") from e


def _load_parquet_dir(root: Path) -> dict[str, pd.DataFrame]:
    out = {}
    for split in ("train", "test"):
        p = root / f"{split}.parquet"
        if not p.exists():
            # Hub exports name shards like train-00000-of-00001.parquet.
            shards = sorted(root.glob(f"{split}-*.parquet")) + sorted(root.glob(f"{split}/*.parquet"))
            if not shards:
                raise DataError(f"{root}: no {split}.parquet (or {split}-*.parquet shards) found")
            out[split] = _check_frame(pd.concat([_read_parquet(s) for s in shards],
                                                ignore_index=True), str(root / split))
        else:
            out[split] = _check_frame(_read_parquet(p), str(p))
    return out


_REVIEW_FILE = re.compile(r"^(\d+)_(\d+)\.txt$")


def _aclimdb_sort_key(name: str):
    m = _REVIEW_FILE.match(os.path.basename(name))
    return (int(m.group(1)) if m else 0, name)


def _load_aclimdb_dir(root: Path) -> dict[str, pd.DataFrame]:
    if (root / "aclImdb").is_dir():
        root = root / "aclImdb"
    out = {}
    for split in ("train", "test"):
        rows = []
        for lab, y in LABELS.items():
            d = root / split / lab
            if not d.is_dir():
                raise DataError(f"{root}: missing folder {split}/{lab} of the aclImdb layout")
            for f in sorted(os.listdir(d), key=_aclimdb_sort_key):
                if f.endswith(".txt"):
                    rows.append((f"{lab}/{f}", (d / f).read_text(encoding="utf-8"), y))
        out[split] = _check_frame(pd.DataFrame(rows, columns=["id", "text", "label"]),
                                  str(root / split))
    return out


def _load_aclimdb_tar(path: Path) -> dict[str, pd.DataFrame]:
    rows: dict[str, list] = {"train": [], "test": []}
    pattern = re.compile(r"(?:^|/)aclImdb/(train|test)/(pos|neg)/[^/]+\.txt$")
    try:
        with tarfile.open(path, "r:*") as tar:
            for member in tar:
                m = pattern.search(member.name)
                if not m or not member.isfile():
                    continue
                text = tar.extractfile(member).read().decode("utf-8")
                rows[m.group(1)].append((member.name, text, LABELS[m.group(2)]))
    except tarfile.TarError as e:
        raise DataError(f"{path}: not a readable tar archive ({e})") from e
    out = {}
    for split, r in rows.items():
        if not r:
            raise DataError(f"{path}: no aclImdb/{split}/{{pos,neg}}/*.txt members")
        r.sort(key=lambda t: (t[2], _aclimdb_sort_key(t[0])))
        out[split] = _check_frame(pd.DataFrame(r, columns=["id", "text", "label"]), f"{path}:{split}")
    return out


def _load_hub(dataset_id: str) -> dict[str, pd.DataFrame]:
    try:
        import datasets
    except ImportError as e:
        raise DataError(f"{dataset_id!r} is not a local path, and loading it from the Hugging Face "
                        "Hub needs the 'datasets' package") from e
    from sentiment.common.progress import datasets_bars_on_terminal_only
    try:
        with datasets_bars_on_terminal_only():
            ds = datasets.load_dataset(dataset_id)
    except Exception as e:
        raise DataError(f"{dataset_id!r}: not a local path, and the Hub dataset could not be loaded "
                        f"({type(e).__name__}: {e})") from e
    return {s: _check_frame(ds[s].to_pandas(), f"{dataset_id}:{s}") for s in ("train", "test")}


def _looks_like_hub_id(s: str) -> bool:
    return bool(re.fullmatch(r"[A-Za-z0-9][\w.-]*/[\w.-]+", s)) and not s.startswith((".", "/"))


HUB_DATASETS = "https://huggingface.co/datasets/"


def data_source(source: str) -> str:
    """The data's location as an absolute path (local data) or a URL (a Hub dataset id), so
    a run and its reports say where the data came from whatever directory it started in."""
    p = Path(source).expanduser()
    if p.exists():
        return str(p.resolve())
    return HUB_DATASETS + source


def source_files(source: str) -> list[Path]:
    """The local files that make up a source, for hashing (empty for a Hub id)."""
    p = Path(source).expanduser()
    if p.is_file():
        return [p]
    if p.is_dir():
        return sorted(q for q in p.rglob("*") if q.is_file() and q.suffix in (".parquet", ".txt"))
    return []


def fingerprint(source: str) -> str:
    """A content hash of the source's files (size + bytes), or of the Hub id."""
    h = hashlib.sha256()
    files = source_files(source)
    if not files:
        h.update(f"hub:{source}".encode())
    base = Path(source).expanduser()
    for f in files:
        h.update(str(f.relative_to(base) if base.is_dir() else f.name).encode())
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()[:16]


def load_imdb(source: str) -> dict[str, pd.DataFrame]:
    """Load the original train and test splits from any supported source."""
    p = Path(source).expanduser()
    if p.is_dir():
        if (p / "train.parquet").exists() or list(p.glob("train-*.parquet")) or (p / "train").is_dir() \
                and list((p / "train").glob("*.parquet")):
            return _load_parquet_dir(p)
        if (p / "aclImdb").is_dir() or (p / "train" / "pos").is_dir():
            return _load_aclimdb_dir(p)
        raise DataError(f"{p}: neither train/test parquet files nor an aclImdb/ layout found")
    if p.is_file():
        if p.name.endswith((".tar.gz", ".tgz", ".tar")):
            return _load_aclimdb_tar(p)
        raise DataError(f"{p}: a single file must be an aclImdb .tar.gz; pass the folder "
                        "holding train.parquet and test.parquet instead")
    if _looks_like_hub_id(source):
        return _load_hub(source)
    raise DataError(f"data path {source!r} does not exist (and is not a Hub dataset id)")


# ---------------------------------------------------------------------------------------
# Splits and subsets
# ---------------------------------------------------------------------------------------

def train_valid_split(df: pd.DataFrame, fraction: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The homework's random 70/30 split: a seeded permutation, first `fraction` is train."""
    perm = np.random.default_rng(seed).permutation(len(df))
    n_train = int(round(len(df) * fraction))
    return (df.iloc[perm[:n_train]].reset_index(drop=True),
            df.iloc[perm[n_train:]].reset_index(drop=True))


def stratified_subset(df: pd.DataFrame, n: int | None, seed: int) -> pd.DataFrame:
    """A deterministic subset of n rows with the class shares of df (all rows if n is None)."""
    if n is None or n >= len(df):
        return df
    rng = np.random.default_rng(seed)
    parts = []
    counts = df["label"].value_counts().sort_index()
    # Largest-remainder allocation so the per-class counts add up to exactly n.
    exact = counts / counts.sum() * n
    take = np.floor(exact).astype(int)
    for lab in (exact - take).sort_values(ascending=False).index[: n - int(take.sum())]:
        take[lab] += 1
    for lab, k in take.items():
        idx = np.flatnonzero(df["label"].to_numpy() == lab)
        parts.append(rng.choice(idx, size=int(k), replace=False))
    keep = np.sort(np.concatenate(parts))
    return df.iloc[keep].reset_index(drop=True)


def load_splits(cfg) -> Splits:
    """Train/valid/test DataFrames for a Config: source → 70/30 split → preset subsets."""
    raw = load_imdb(cfg.data)
    train, valid = train_valid_split(raw["train"], cfg.train_fraction, cfg.split_seed)
    if len(train) == 0 or len(valid) == 0:
        raise DataError(f"{cfg.data}: {len(raw['train'])} training rows are too few for a "
                        f"{cfg.train_fraction:.0%}/{1 - cfg.train_fraction:.0%} split")
    return Splits(
        train=stratified_subset(train, cfg.max_train, cfg.split_seed),
        valid=stratified_subset(valid, cfg.max_valid, cfg.split_seed),
        test=stratified_subset(raw["test"], cfg.max_test, cfg.split_seed),
        source=cfg.data,
        fingerprint=fingerprint(cfg.data),
    )
