"""SHA-256 of every file of a registered version's model folder, recorded on the version at
registration (tag ``files_sha256``) and checked before a rollback moves the alias back to it:
a version whose files were changed or removed since it was registered is refused.

The check reads the version's files as the registry serves them (a download of its model
folder), so it covers every store: a local artifact folder and a server alike.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path

from sentiment.tracking.names import VERSION_FILES_SHA256

CHUNK = 1 << 20
# Written by MLflow into a download of a registered version (its name and version), not part of
# the model: it differs between two versions of the same files.
NOT_MODEL_FILES = ("registered_model_meta",)


def folder_digests(folder: Path) -> dict[str, str]:
    """{path relative to `folder`: SHA-256 hex} of every file under it, in path order."""
    out = {}
    for path in sorted(p for p in Path(folder).rglob("*")
                       if p.is_file() and p.name not in NOT_MODEL_FILES):
        h = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(CHUNK):
                h.update(chunk)
        out[path.relative_to(folder).as_posix()] = h.hexdigest()
    return out


def download_version(client, name: str, version, store: str, dest: Path) -> Path:
    """The version's model folder, downloaded from the registry into `dest`."""
    from mlflow.artifacts import download_artifacts
    where = client.get_model_version_download_uri(name, str(version))
    return Path(download_artifacts(artifact_uri=where, dst_path=str(dest), tracking_uri=store))


def record_checksums(client, name: str, version, store: str) -> dict[str, str]:
    """Hash the version's files as stored and tag the version with them; kept when already
    recorded, so a retried registration never replaces the first record."""
    have = (client.get_model_version(name, str(version)).tags or {}).get(VERSION_FILES_SHA256)
    if have:
        return json.loads(have)
    with tempfile.TemporaryDirectory() as tmp:
        digests = folder_digests(download_version(client, name, version, store, Path(tmp)))
    client.set_model_version_tag(name, str(version), VERSION_FILES_SHA256,
                                 json.dumps(digests, sort_keys=True))
    return digests


def recorded(mv) -> dict[str, str] | None:
    """The digests recorded on a version at registration; None when it has none (a version
    registered before they were recorded) or the tag is unreadable."""
    raw = (mv.tags or {}).get(VERSION_FILES_SHA256)
    if not raw:
        return None
    try:
        found = json.loads(raw)
    except ValueError:
        return None
    return found if isinstance(found, dict) else None


def mismatches(expected: dict[str, str], folder: Path) -> list[str]:
    """What differs between the recorded digests and `folder`, one phrase per file."""
    actual = folder_digests(folder)
    problems = [f"{p} changed" for p in expected if p in actual and actual[p] != expected[p]]
    problems += [f"{p} missing" for p in expected if p not in actual]
    problems += [f"{p} added" for p in actual if p not in expected]
    return problems
