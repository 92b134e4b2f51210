"""Loading a model by MLflow URI (``models:/NAME@ALIAS``, ``models:/NAME/VERSION``,
``runs:/RUN_ID/model``), with errors that name what is missing in plain words.

Safe by default: before anything is loaded, the store is probed (an unreachable server is not
an "unknown model") and the model's ``MLmodel`` is read; a model whose loading would unpickle
(a python_function saved with cloudpickle, or another flavor that unpickles) is refused unless
the user set ``MLFLOW_ALLOW_PICKLE_DESERIALIZATION=true``. Our own models are logged as code
with safetensors weights and need no pickle.
"""

from __future__ import annotations

import re

import numpy as np

from sentiment.config import DECISION_THRESHOLD
from sentiment.tracking.store import (
    PICKLE_SETTING,
    StoreUnavailable,
    connect,
    pickle_allowed,
    probe,
    tracking_uri,
)

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


def _missing(e) -> bool:
    return getattr(e, "error_code", "") == "RESOURCE_DOES_NOT_EXIST"


def _store_error(store: str, e) -> StoreUnavailable:
    first = (str(getattr(e, "message", e)) or type(e).__name__).splitlines()[0]
    return StoreUnavailable(f"tracking server at {store} failed to answer: {first[:300]}")


def check_registry(client, p: dict, store: str) -> None:
    """Name the missing piece (model, version or alias) in plain words; a store that fails to
    answer is said to be that, not a missing model."""
    from mlflow.exceptions import MlflowException
    name = p.get("name")
    if not name:
        return
    try:
        rm = client.get_registered_model(name)
    except MlflowException as e:
        if not _missing(e):
            raise _store_error(store, e) from e
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
        from mlflow.exceptions import MlflowException
        try:
            out = self.pyfunc.predict(pd.DataFrame({"text": texts}))
        except MlflowException as e:  # the model's one-line refusal of bad input
            raise ValueError(f"{self.uri}: {(e.message or '').splitlines()[0]}") from e
        return np.asarray(out["probability"], dtype=np.float32)

    def predict(self, texts, threshold: float = DECISION_THRESHOLD) -> list[dict]:
        return [{"probability": float(p), "label": "pos" if p >= threshold else "neg"}
                for p in self.predict_proba(texts)]


class UnsafeModel(ValueError):
    """A model whose loading would unpickle, with pickle deserialization off."""


# Loader modules whose load runs no pickle of the model's own: models from code.
_CODE_LOADERS = ("mlflow.pyfunc.loaders.code_model",)


def pickle_risk(mlmodel) -> str | None:
    """Why loading this MLmodel (an mlflow.models.Model) would unpickle; None when it would not."""
    pyfunc = mlmodel.flavors.get("python_function")
    if pyfunc is None:
        return f"it has no python_function flavor (flavors: {', '.join(mlmodel.flavors)})"
    loader = pyfunc.get("loader_module", "")
    if loader in _CODE_LOADERS or (loader == "mlflow.pyfunc.model" and "model_code_path" in pyfunc):
        return None
    if loader == "mlflow.pyfunc.model":
        return (f"it is a python_function model saved with cloudpickle "
                f"({pyfunc.get('python_model', 'python_model.pkl')}), not as code")
    flavor = loader.rsplit(".", 1)[-1]
    return f"its {flavor!r} flavor ({loader}) loads with pickle"


def _mlmodel_source(client, p: dict, uri: str) -> tuple[str, str]:
    """(artifact URI of the model folder, how to name it) for a parsed model URI."""
    name = p.get("name")
    if p["kind"] in ("alias", "version", "latest"):
        if p["kind"] == "alias":
            mv = client.get_model_version_by_alias(name, p["alias"])
        elif p["kind"] == "version":
            mv = client.get_model_version(name, p["version"])
        else:
            mv = max(client.search_model_versions(f"name = '{name}'"), key=lambda v: int(v.version))
        where = client.get_model_version_download_uri(name, str(mv.version))
        return where, f"{uri} (version {mv.version} of {name!r})"
    if p["kind"] == "logged_model":
        return client.get_logged_model(p["model_id"]).artifact_location, uri
    if p["kind"] == "run":
        return client.get_run(p["run_id"]).info.artifact_uri + "/" + p["path"].strip("/"), uri
    return uri.rstrip("/"), uri


def check_no_pickle(client, uri: str, store: str) -> None:
    """Read the model's MLmodel (one small file) and refuse a model that would unpickle."""
    import tempfile

    from mlflow.artifacts import download_artifacts
    from mlflow.models import Model
    if pickle_allowed():
        return
    p = parse_model_uri(uri)
    where, label = _mlmodel_source(client, p, uri.strip())
    with tempfile.TemporaryDirectory() as tmp:
        try:
            local = download_artifacts(artifact_uri=f"{where}/MLmodel", dst_path=tmp,
                                       tracking_uri=store)
        except Exception as e:
            raise ValueError(f"cannot read the MLmodel of {label}: "
                             f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from e
        risk = pickle_risk(Model.load(local))
    if risk:
        raise UnsafeModel(f"refusing to load {label}: {risk}, and loading it would run the code "
                          f"it holds; pickle deserialization is off ({PICKLE_SETTING}=false). "
                          f"Set {PICKLE_SETTING}=true only for a model you trust.")


def load_model_uri(uri: str, store_uri: str | None = None,
                   timeout_s: float | None = None) -> PyfuncPredictor:
    """mlflow.pyfunc.load_model, safe by default, with errors that say whether the store is
    unreachable, which model, version or alias is missing, or why the model is refused."""
    from mlflow.exceptions import MlflowException
    p = parse_model_uri(uri)
    store = store_uri or tracking_uri()
    probe(store, timeout_s)
    mlflow, client = connect(store)
    check_registry(client, p, store)
    try:
        check_no_pickle(client, uri, store)
        return PyfuncPredictor(mlflow.pyfunc.load_model(uri.strip()), uri)
    except MlflowException as e:
        first = (e.message or "").splitlines()[0] if e.message else type(e).__name__
        raise ValueError(f"cannot load {uri!r} from {store}: {first}") from e
