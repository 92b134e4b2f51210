"""Which MLflow store the project talks to, and the connection to it.

Store: ``cfg.tracking_uri``, else ``$MLFLOW_TRACKING_URI``, else the SQLite database
``mlflow/mlflow.db`` of this repository with artifacts in ``mlflow/artifacts``.

MLflow is imported inside the functions, so ``sentiment`` trains without it (``--no-track``)
and importing this module costs nothing.
"""

from __future__ import annotations

import os
import re
from pathlib import Path


def repo_root() -> Path:
    """The checkout holding `mlflow/` beside the `sentiment` package; else the working dir
    (an installed wheel, or the copy of `sentiment` inside a logged model)."""
    here = Path(__file__).resolve().parent.parent
    if (here / "mlflow").is_dir() and (here / "sentiment").is_dir():
        return here
    return Path.cwd()


def default_tracking_uri() -> str:
    return f"sqlite:///{repo_root() / 'mlflow' / 'mlflow.db'}"


def tracking_uri(cfg=None) -> str:
    """cfg.tracking_uri, else $MLFLOW_TRACKING_URI, else the repository's SQLite store."""
    return (getattr(cfg, "tracking_uri", None) or os.environ.get("MLFLOW_TRACKING_URI")
            or default_tracking_uri())


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI (absolute), else None."""
    if not uri.startswith("sqlite:///"):
        return None
    path = uri[len("sqlite:///"):].split("?", 1)[0]
    if not path or path == ":memory:":
        return None
    return Path(path).expanduser().resolve()


def artifact_root(uri: str) -> str | None:
    """Where new experiments keep artifacts. A SQLite store keeps them in `artifacts/` beside
    its database file (the repo default: mlflow/artifacts) instead of MLflow's ./mlruns, which
    depends on the working directory. Servers and other stores decide for themselves (None)."""
    db = sqlite_path(uri)
    return (db.parent / "artifacts").as_uri() if db else None


def import_mlflow():
    """The mlflow module, or a one-line error saying how to get it."""
    # Opt out of usage telemetry unless the user chose otherwise: training hosts are often
    # offline, and a tracking call should never wait on a third-party endpoint.
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    try:
        import mlflow
    except ImportError as e:
        raise RuntimeError("MLflow is not installed: pip install 'imdb-sentiment[pipeline]', "
                           "or train with --no-track") from e
    return mlflow


def connect(uri: str):
    """(mlflow module, MlflowClient) bound to one store, tracking and registry alike."""
    mlflow = import_mlflow()
    db = sqlite_path(uri)
    if db is not None:
        db.parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    if not uri.startswith("databricks"):
        mlflow.set_registry_uri(uri)
    return mlflow, mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "experiment"


def ensure_experiment(client, name: str, uri: str) -> str:
    """The experiment's id, created with an explicit artifact location when it is new."""
    from mlflow.exceptions import MlflowException
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        if exp.lifecycle_stage == "deleted":
            client.restore_experiment(exp.experiment_id)
        return exp.experiment_id
    root = artifact_root(uri)
    location = f"{root}/{_slug(name)}" if root else None
    try:
        # The kind tag makes the UI open the experiment in its model-training view (runs,
        # metric charts) rather than the GenAI one (traces).
        return client.create_experiment(name, artifact_location=location,
                                        tags={"mlflow.experimentKind": "custom_model_development"})
    except MlflowException:
        # Another process created it between our lookup and create.
        exp = client.get_experiment_by_name(name)
        if exp is None:
            raise
        return exp.experiment_id
