"""The training-data profile (``sentiment.drift.profile``) of a registered model: written to
the model's run when it is registered, read back by scoring to check drift.

It is an artifact of the run the version came from (``data_profile.json``), so every version
of that run, and a ``runs:/`` URI, find the same profile.
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path
from typing import Optional

from sentiment.tracking.names import DATA_PROFILE_ARTIFACT

log = logging.getLogger(__name__)


def has_profile(client, run_id: str) -> bool:
    return any(f.path == DATA_PROFILE_ARTIFACT for f in client.list_artifacts(run_id))


def profile_training_run(client, run_id: str, run_dir: Path, cfg, spec) -> bool:
    """Profile the training split of `cfg.data` (and the run's validation scores) and log it
    to the run, once: a retry finds it there. True when it is there afterwards."""
    import pandas as pd

    from sentiment.data.imdb import load_imdb
    from sentiment.drift.profile import build_profile
    from sentiment.encoding.encoders import load_tokenizer, resolve
    from sentiment.training.outputs import VALID_PREDICTIONS
    if has_profile(client, run_id):
        return True
    train = load_imdb(cfg.data)["train"]["text"].tolist()
    valid = run_dir / VALID_PREDICTIONS
    probs = pd.read_parquet(valid)["prob"].to_numpy() if valid.is_file() else None
    tokenizer = load_tokenizer(resolve(spec.encoder, spec.encoder_revision))
    profile = build_profile(train, tokenizer, spec.encoder, spec.encoder_revision,
                            spec.max_length, probs)
    client.log_dict(run_id, profile, DATA_PROFILE_ARTIFACT)
    return True


def load_profile(client, run_id: Optional[str]) -> Optional[dict]:
    """The profile logged to `run_id`, or None (a model registered before profiles existed)."""
    if not run_id:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = client.download_artifacts(run_id, DATA_PROFILE_ARTIFACT, tmp)
        except Exception as e:  # no such artifact: an older model
            log.info("no data profile on run %s (%s)", run_id, type(e).__name__)
            return None
        return json.loads(Path(path).read_text())


def model_run_id(client, resolved: dict) -> Optional[str]:
    """The run a resolved model (``batch.resolve_model``'s dict) came from."""
    if resolved.get("model_version") is not None:
        return client.get_model_version(resolved["model_name"],
                                        str(resolved["model_version"])).run_id
    uri = resolved["model_uri"]
    if uri.startswith("runs:/"):
        return uri[len("runs:/"):].split("/", 1)[0]
    return None
