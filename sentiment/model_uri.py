"""Loading a model by MLflow URI (``models:/NAME@ALIAS``, ``models:/NAME/VERSION``,
``runs:/RUN_ID/model``), with errors that name what is missing in plain words."""

from __future__ import annotations

import re

import numpy as np

from .mlflow_store import connect, tracking_uri

_USAGE = ("use models:/NAME@ALIAS (e.g. models:/imdb-sentiment@champion), models:/NAME/VERSION "
          "or runs:/RUN_ID/model")
_SCHEMES = ("models", "runs", "mlflow-artifacts", "file")


def is_model_uri(s: str | None) -> bool:
    """Whether `s` is meant as an MLflow URI rather than a local model folder."""
    return bool(s) and s.split(":", 1)[0] in _SCHEMES and ":/" in s


def parse_model_uri(uri: str) -> dict:
    """Check a model URI's shape before MLflow sees it; MLflow's own messages for a bad one are
    about artifacts or logged-model ids, not about what was typed."""
    if not isinstance(uri, str) or not uri.strip():
        raise ValueError(f"empty model URI; {_USAGE}")
    uri = uri.strip()
    if uri.startswith("models:/"):
        rest = uri[len("models:/"):]
        if "@" in rest:
            parts = rest.split("@")
            if len(parts) != 2 or not all(parts) or "/" in parts[0] or "/" in parts[1]:
                raise ValueError(f"malformed model URI {uri!r}; {_USAGE}")
            return {"kind": "alias", "name": parts[0], "alias": parts[1]}
        parts = rest.split("/")
        if len(parts) == 2 and all(parts):
            if parts[1].isdigit():
                return {"kind": "version", "name": parts[0], "version": parts[1]}
            if parts[1] == "latest":
                return {"kind": "latest", "name": parts[0]}
            raise ValueError(f"malformed model URI {uri!r}: {parts[1]!r} is not a version "
                             f"number (stages are not used here; use an alias); {_USAGE}")
        if len(parts) == 1 and re.fullmatch(r"m-[0-9a-f]{8,}", parts[0]):
            return {"kind": "logged_model", "model_id": parts[0]}
        if len(parts) == 1 and parts[0]:
            raise ValueError(f"model URI {uri!r} names no version or alias; {_USAGE}")
        raise ValueError(f"malformed model URI {uri!r}; {_USAGE}")
    if uri.startswith("runs:/"):
        parts = uri[len("runs:/"):].split("/", 1)
        if len(parts) != 2 or not all(parts):
            raise ValueError(f"malformed run URI {uri!r}; expected runs:/RUN_ID/PATH")
        return {"kind": "run", "run_id": parts[0], "path": parts[1]}
    if re.match(r"^(file|mlflow-artifacts|s3|gs|wasbs|https?)://?", uri):
        return {"kind": "artifact"}
    raise ValueError(f"not an MLflow model URI: {uri!r}; {_USAGE}")


def _check_registry(client, p: dict, store: str) -> None:
    """Name the missing piece (model, version or alias) in plain words."""
    from mlflow.exceptions import MlflowException
    name = p.get("name")
    if not name:
        return
    try:
        rm = client.get_registered_model(name)
    except MlflowException as e:
        raise ValueError(f"unknown registered model {name!r} in {store}") from e
    if p["kind"] == "alias":
        aliases = sorted((rm.aliases or {}).keys())
        if p["alias"] not in aliases:
            raise ValueError(f"registered model {name!r} has no alias {p['alias']!r} "
                             f"(aliases: {', '.join(aliases) or 'none'})")
    elif p["kind"] == "version":
        try:
            client.get_model_version(name, p["version"])
        except MlflowException as e:
            raise ValueError(f"registered model {name!r} has no version {p['version']}") from e


class PyfuncPredictor:
    """A loaded pyfunc model with SentimentModel's `predict_proba`, for the CLI."""

    def __init__(self, pyfunc_model, uri: str):
        self.pyfunc = pyfunc_model
        self.uri = uri
        self.metadata = pyfunc_model.metadata

    def predict_proba(self, texts) -> np.ndarray:
        import pandas as pd
        texts = list(texts)
        if not texts:
            return np.zeros(0, dtype=np.float32)
        out = self.pyfunc.predict(pd.DataFrame({"text": texts}))
        return np.asarray(out["probability"], dtype=np.float32)

    def predict(self, texts, threshold: float = 0.5) -> list[dict]:
        return [{"probability": float(p), "label": "pos" if p >= threshold else "neg"}
                for p in self.predict_proba(texts)]


def load_model_uri(uri: str, store_uri: str | None = None) -> PyfuncPredictor:
    """mlflow.pyfunc.load_model with errors that say which model, version or alias is missing."""
    from mlflow.exceptions import MlflowException
    p = parse_model_uri(uri)
    store = store_uri or tracking_uri()
    mlflow, client = connect(store)
    _check_registry(client, p, store)
    try:
        return PyfuncPredictor(mlflow.pyfunc.load_model(uri.strip()), uri)
    except MlflowException as e:
        raise ValueError(f"cannot load {uri!r} from {store}: {e.message}") from e
