"""Which MLflow store the project talks to, and the connection to it.

Store: ``cfg.tracking_uri``, else ``$MLFLOW_TRACKING_URI``, else the SQLite database
``mlflow/mlflow.db`` of this repository with artifacts in ``mlflow/artifacts``.

MLflow is imported inside the functions, so ``sentiment`` trains without it (``--no-track``)
and importing this module costs nothing.
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

from sentiment.tracking.names import DESCRIPTION, EXPERIMENT_DESCRIPTION


def repo_root() -> Path:
    """The checkout holding `mlflow/` beside the `sentiment` package; else the working dir
    (an installed wheel, or the copy of `sentiment` inside a logged model)."""
    here = Path(__file__).resolve().parents[2]
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


def store_needs(cfg) -> dict:
    """{(label, folder): bytes} a pipeline run adds to a local store: one registered version
    carries its own copy of the encoder, the model and the baseline (~10 MB). A server's store
    is the server's business (empty)."""
    from sentiment.training.preflight import encoder_shape
    db = sqlite_path(tracking_uri(cfg))
    if db is None:
        return {}
    return {("model store in", str(db.parent)): encoder_shape(cfg)[2] + 10_000_000}


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


class StoreUnavailable(RuntimeError):
    """The tracking store cannot be used: one line naming the URI and the cause."""


# MLflow reads its HTTP settings from the environment at every request. Its own defaults (120 s
# per request, 7 retries with backoff) turn an unreachable server into minutes of silence; pickle
# deserialization is allowed by default in MLflow 3.x, and our models never need it.
PICKLE_SETTING = "MLFLOW_ALLOW_PICKLE_DESERIALIZATION"
HTTP_TIMEOUT_SETTING = "MLFLOW_HTTP_REQUEST_TIMEOUT"
HTTP_RETRIES_SETTING = "MLFLOW_HTTP_REQUEST_MAX_RETRIES"
SETTINGS = (HTTP_TIMEOUT_SETTING, HTTP_RETRIES_SETTING, PICKLE_SETTING)
# The settings the user had set before this process first configured MLflow: those always win.
_user_set: frozenset[str] | None = None


def configure(cfg=None) -> dict:
    """The one place that sets MLflow's HTTP settings for this process: request timeout and
    retries from `cfg` (``tracking_timeout_s``, ``tracking_max_retries``), pickle
    deserialization off, each unless the user set the variable before the first call.

    Called by ``connect`` (with the caller's Config) and at the entry points (the CLI, the
    registry probe), so the settings follow the Config of the work at hand. Without a `cfg`,
    settings already made stay and only missing ones get Config's defaults. Returns the
    values in effect."""
    from sentiment.config import default
    global _user_set
    if _user_set is None:
        _user_set = frozenset(k for k in SETTINGS if k in os.environ)
    timeout = getattr(cfg, "tracking_timeout_s", None) or default("tracking_timeout_s")
    retries = getattr(cfg, "tracking_max_retries", None)
    retries = default("tracking_max_retries") if retries is None else retries
    wanted = {HTTP_TIMEOUT_SETTING: str(int(timeout)), HTTP_RETRIES_SETTING: str(int(retries)),
              PICKLE_SETTING: "false"}
    for key, value in wanted.items():
        if key in _user_set:
            continue
        if cfg is not None and key != PICKLE_SETTING:
            os.environ[key] = value
        else:
            os.environ.setdefault(key, value)
    return {k: os.environ[k] for k in SETTINGS}


def pickle_allowed() -> bool:
    """Whether the user chose to allow pickle deserialization (off unless they did)."""
    return os.environ.get(PICKLE_SETTING, "false").strip().lower() in ("1", "true", "yes", "on")


def _is_http(uri: str) -> bool:
    return uri.startswith(("http://", "https://"))


def probe(uri: str, timeout_s: float | None = None) -> None:
    """Fail fast, before any work, when the store at `uri` cannot be used.

    An HTTP store must answer MLflow's REST API within `timeout_s` (one retry for a refused
    connection that a restarting server may give); a SQLite store's folder must be writable.
    Raises StoreUnavailable with one line naming the URI and the cause."""
    from sentiment.config import default
    timeout_s = float(timeout_s or default("probe_timeout_s"))
    if _is_http(uri):
        _probe_http(uri, timeout_s)
        return
    db = sqlite_path(uri)
    folder = db.parent if db is not None else file_store_folder(uri)
    if folder is None:
        return  # another kind of store (databricks, postgres...): its client says what is wrong
    _probe_folder(uri, folder)


def file_store_folder(uri: str) -> Path | None:
    if uri.startswith("file:"):
        from urllib.parse import unquote, urlparse
        return Path(unquote(urlparse(uri).path))
    if "://" not in uri and ":" not in uri.split("/", 1)[0]:
        return Path(uri).expanduser()
    return None


def _probe_folder(uri: str, folder: Path) -> None:
    from sentiment.common.files import unwritable_folder
    problem = unwritable_folder(folder)
    if problem:
        raise StoreUnavailable(f"tracking store {uri} unusable: {problem}")


def _probe_http(uri: str, timeout_s: float) -> None:
    import json
    import time
    import urllib.error
    import urllib.request
    url = uri.rstrip("/") + "/api/2.0/mlflow/experiments/search?max_results=1"
    headers = {"Accept": "application/json"}
    token = os.environ.get("MLFLOW_TRACKING_TOKEN")
    if token:
        headers["Authorization"] = f"Bearer {token}"
    deadline = time.monotonic() + timeout_s
    for attempt in range(2):
        left = max(0.5, deadline - time.monotonic())
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers),
                                        timeout=left) as r:
                body = r.read(1 << 20)
            try:
                ok = isinstance(json.loads(body), dict)
            except ValueError:
                ok = False
            if not ok:
                raise StoreUnavailable(f"tracking server at {uri} is not an MLflow server "
                                       "(its REST API answered something other than JSON)")
            return
        except urllib.error.HTTPError as e:
            if e.code in (401, 403):
                raise StoreUnavailable(f"tracking server at {uri} refused access (HTTP {e.code}); "
                                       "set MLFLOW_TRACKING_TOKEN or MLFLOW_TRACKING_USERNAME/"
                                       "PASSWORD") from None
            raise StoreUnavailable(f"tracking server at {uri} is not an MLflow server "
                                   f"(HTTP {e.code} from its REST API)") from None
        except urllib.error.URLError as e:
            cause = e.reason
            if isinstance(cause, ConnectionRefusedError) and attempt == 0 \
                    and deadline - time.monotonic() > 1:
                time.sleep(0.5)  # a server restarting right now
                continue
            raise StoreUnavailable(f"tracking server unreachable at {uri}: "
                                   f"{_cause(cause, timeout_s)}") from None
        except TimeoutError:
            raise StoreUnavailable(f"tracking server unreachable at {uri}: no answer within "
                                   f"{timeout_s:g} s (timed out)") from None
        except (ConnectionError, OSError) as e:
            raise StoreUnavailable(f"tracking server unreachable at {uri}: "
                                   f"{_cause(e, timeout_s)}") from None


def _cause(err, timeout_s: float) -> str:
    import socket
    if isinstance(err, ConnectionRefusedError):
        return "connection refused"
    if isinstance(err, (socket.timeout, TimeoutError)):
        return f"no answer within {timeout_s:g} s (timed out)"
    if isinstance(err, socket.gaierror):
        return f"host name not resolved ({err.strerror})"
    if isinstance(err, ConnectionResetError):
        return "connection reset"
    return str(getattr(err, "strerror", None) or err)


def connect(uri: str, cfg=None):
    """(mlflow module, MlflowClient) bound to one store, tracking and registry alike; MLflow's
    HTTP settings from `cfg` (see ``configure``)."""
    configure(cfg)
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
        if DESCRIPTION not in exp.tags:  # an experiment made before it had one
            with contextlib.suppress(MlflowException):
                client.set_experiment_tag(exp.experiment_id, DESCRIPTION, EXPERIMENT_DESCRIPTION)
        return exp.experiment_id
    root = artifact_root(uri)
    location = f"{root}/{_slug(name)}" if root else None
    try:
        # The kind tag makes the UI open the experiment in its model-training view (runs,
        # metric charts) rather than the GenAI one (traces).
        return client.create_experiment(name, artifact_location=location,
                                        tags={"mlflow.experimentKind": "custom_model_development",
                                              DESCRIPTION: EXPERIMENT_DESCRIPTION})
    except MlflowException:
        # Another process created it between our lookup and create.
        exp = client.get_experiment_by_name(name)
        if exp is None:
            raise
        return exp.experiment_id
