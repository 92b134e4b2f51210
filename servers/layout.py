"""Where server mode keeps its state, and the settings it reads from the environment.

Everything lives in one folder, `.servers/` in the repository or `$SENTIMENT_SERVERS_DIR`:

    postgres/data        the PostgreSQL cluster (owned by the `postgres` user when run as root)
    postgres/socket      its unix socket;  postgres/postgres.log  its log
    postgres/password    the database password (mode 600)
    artifacts/           MLflow's artifact store (when no other destination is configured)
    prefect-home/        PREFECT_HOME of the server and the workers
    logs/<name>.log      each process's output
    processes.json       what was started: name, pid, process group, start time, port, URL
    env                  `source` it: MLFLOW_TRACKING_URI and PREFECT_API_URL
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
POOL = "sentiment-process"  # the work pool of prefect.yaml's deployments
LOOPBACK = "127.0.0.1"


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        raise SystemExit(f"servers: {name}={raw!r} is not an integer") from None


@dataclass(frozen=True)
class Settings:
    """Server mode's settings, each from an environment variable (defaults in brackets)."""

    host: str               # SENTIMENT_SERVERS_HOST [127.0.0.1]: where MLflow and Prefect listen
    pg_port: int            # SENTIMENT_PG_PORT [55432; 0 = any free port]
    mlflow_port: int        # SENTIMENT_MLFLOW_PORT [5080]
    prefect_port: int       # SENTIMENT_PREFECT_PORT [4200]
    workers: int            # SENTIMENT_WORKERS [2]: process workers on the pool
    worker_limit: int       # SENTIMENT_WORKER_LIMIT [1]: flow runs at once per worker
    heartbeat_s: int        # PREFECT_FLOWS_HEARTBEAT_FREQUENCY [30]: flow-run heartbeat period
    crash_after_s: int      # SENTIMENT_CRASH_AFTER_S [90]: no heartbeat this long: Crashed
    mlflow_db_uri: str      # SENTIMENT_MLFLOW_DB_URI: your own database instead of the local one
    prefect_db_uri: str     # SENTIMENT_PREFECT_DB_URI: likewise, postgresql+asyncpg://...
    artifacts: str          # SENTIMENT_ARTIFACTS_DESTINATION [<state>/artifacts]; s3://... works
    port_explicit: frozenset  # which ports were set explicitly (busy then means an error)

    @classmethod
    def from_env(cls, state: State) -> Settings:
        env = os.environ
        explicit = frozenset(k for k in ("SENTIMENT_PG_PORT", "SENTIMENT_MLFLOW_PORT",
                                         "SENTIMENT_PREFECT_PORT") if env.get(k))
        return cls(
            host=env.get("SENTIMENT_SERVERS_HOST") or LOOPBACK,
            pg_port=_int("SENTIMENT_PG_PORT", 55432),
            # Not make mlflow-ui's 5000: the local UI and server mode can run side by side.
            mlflow_port=_int("SENTIMENT_MLFLOW_PORT", 5080),
            prefect_port=_int("SENTIMENT_PREFECT_PORT", 4200),
            workers=_int("SENTIMENT_WORKERS", 2),
            worker_limit=_int("SENTIMENT_WORKER_LIMIT", 1),
            heartbeat_s=max(30, _int("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", 30)),
            crash_after_s=_int("SENTIMENT_CRASH_AFTER_S", 90),
            mlflow_db_uri=env.get("SENTIMENT_MLFLOW_DB_URI", ""),
            prefect_db_uri=env.get("SENTIMENT_PREFECT_DB_URI", ""),
            artifacts=env.get("SENTIMENT_ARTIFACTS_DESTINATION") or str(state.root / "artifacts"),
            port_explicit=explicit,
        )

    @property
    def needs_local_postgres(self) -> bool:
        return not (self.mlflow_db_uri and self.prefect_db_uri)


@dataclass(frozen=True)
class State:
    """The state folder and the files in it."""

    root: Path

    @classmethod
    def find(cls) -> State:
        raw = os.environ.get("SENTIMENT_SERVERS_DIR")
        return cls(Path(raw).expanduser().resolve() if raw else REPO / ".servers")

    pg_dir = property(lambda self: self.root / "postgres")
    pg_data = property(lambda self: self.root / "postgres" / "data")
    pg_socket = property(lambda self: self.root / "postgres" / "socket")
    pg_log = property(lambda self: self.root / "postgres" / "postgres.log")
    pg_password = property(lambda self: self.root / "postgres" / "password")
    prefect_home = property(lambda self: self.root / "prefect-home")
    logs = property(lambda self: self.root / "logs")
    processes_file = property(lambda self: self.root / "processes.json")
    env_file = property(lambda self: self.root / "env")

    def log(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def read_processes(self) -> dict:
        try:
            return json.loads(self.processes_file.read_text())
        except FileNotFoundError:
            return {}

    def write_processes(self, procs: dict) -> None:
        write_atomic(self.processes_file, json.dumps(procs, indent=2) + "\n")


def write_atomic(path: Path, text: str, mode: int = 0o644) -> None:
    """Write `text` to `path` through a temp file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
