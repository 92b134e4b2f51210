"""`python -m servers start`: PostgreSQL, the MLflow server, the Prefect server, the work pool,
the deployments, the crash-detection automation and the workers; then the `env` file clients
source. Starting what already runs says so and changes nothing."""

from __future__ import annotations

import os
import time

from servers import crash_detection, mlflow_server, postgres, prefect_server, status
from servers.layout import POOL, REPO, Settings, State, write_atomic
from servers.processes import free_port, port_free, process
from servers.stop import stop_all


def _port(settings: Settings, env_name: str, wanted: int, taken: set[int]) -> int:
    host = "127.0.0.1" if env_name == "SENTIMENT_PG_PORT" else settings.host
    if env_name in settings.port_explicit and wanted:
        if not port_free(host, wanted):
            raise SystemExit(f"servers: {env_name}={wanted} is in use; choose another port")
        return wanted
    if wanted and wanted not in taken and port_free(host, wanted):
        return wanted
    while True:
        port = free_port(host)
        if port not in taken:
            return port


def base_env(state: State) -> dict:
    """The environment every started process gets: the caller's, with Prefect pointed at the
    state folder and no usage reporting."""
    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "PREFECT_HOME")}
    env["PREFECT_HOME"] = str(state.prefect_home)
    env.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    env.setdefault("DO_NOT_TRACK", "1")
    env.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    env["PREFECT_CLI_PROMPT"] = "false"
    return env


def all_running(state: State, procs: dict) -> bool:
    if not procs:
        return False
    for name, rec in procs.items():
        if name == "postgres":
            if not postgres.running(state):
                return False
        elif process(rec) is None:
            return False
    return True


def start() -> int:
    state = State.find()
    procs = state.read_processes()
    if all_running(state, procs):
        print(f"servers: already running (state {state.root}); nothing started")
        status.show(state)
        return 0
    dead = [n for n, r in procs.items() if n.startswith("worker-") and process(r) is None]
    if dead and all_running(state, {n: r for n, r in procs.items() if n not in dead}):
        restart_workers(state, procs, dead)
        status.show(state)
        return 0
    if procs:
        print("servers: some of the servers stopped; stopping the rest and starting again")
        stop_all(state, quiet=True)
    state.root.mkdir(parents=True, exist_ok=True)
    state.logs.mkdir(exist_ok=True)
    state.prefect_home.mkdir(exist_ok=True)
    settings = Settings.from_env(state)
    try:
        _start(state, settings)
    except BaseException:
        print("servers: start failed; stopping what was started")
        stop_all(state, quiet=True)
        raise
    status.show(state)
    print(f"\nPoint clients at it:  source {state.env_file}")
    return 0


def _client_env(state: State, settings: Settings, api: str, mlflow_url: str,
                sweep_db: str = "") -> dict:
    """The environment of `prefect deploy` and the workers: the servers' addresses, this
    clone for prefect.yaml's pull step, flow-run heartbeats for crash detection, and the
    database of the head sweeps' Optuna studies (the local cluster's, when there is one)."""
    env = dict(base_env(state), PREFECT_API_URL=api, MLFLOW_TRACKING_URI=mlflow_url,
               SENTIMENT_REPO=str(REPO),
               PREFECT_FLOWS_HEARTBEAT_FREQUENCY=str(settings.heartbeat_s))
    if sweep_db:
        env["SENTIMENT_SWEEP_STORAGE"] = sweep_db
    return env


def restart_workers(state: State, procs: dict, dead: list[str]) -> None:
    """Start again the workers that died while the servers kept running."""
    settings = Settings.from_env(state)
    pg = procs.get("postgres")
    sweep_db = postgres.uri(state, pg["port"], "optuna", "psycopg2") if pg else ""
    env = _client_env(state, settings, procs["prefect-server"]["api"], procs["mlflow"]["url"],
                      sweep_db)
    started = []
    for name in dead:
        rec = prefect_server.start_worker(state, settings, int(name.split("-")[1]), env)
        procs[name] = rec
        started.append(rec)
        state.write_processes(procs)
    prefect_server.wait_workers(env["PREFECT_API_URL"], [r["worker_name"] for r in started],
                                started)
    print(f"servers: {', '.join(dead)} had stopped; started again (the servers kept running)")


class _Steps:
    """Prints each step with its seconds, so a slow start says where it spent them."""

    def __init__(self):
        self.t0 = time.monotonic()

    def done(self, what: str) -> None:
        now = time.monotonic()
        print(f"servers: {what} ({now - self.t0:.0f} s)", flush=True)
        self.t0 = now


def _start(state: State, settings: Settings) -> None:
    procs: dict = {}
    step = _Steps()
    env = base_env(state)
    taken: set[int] = set()

    mlflow_db, prefect_db = settings.mlflow_db_uri, settings.prefect_db_uri
    sweep_db = ""
    if settings.needs_local_postgres:
        if not postgres.initialized(state):
            print(f"servers: creating the PostgreSQL cluster in {state.pg_data}")
            postgres.init(state)
        pg_port = _port(settings, "SENTIMENT_PG_PORT", settings.pg_port, taken)
        taken.add(pg_port)
        postgres.start(state, pg_port)
        step.done(f"PostgreSQL on 127.0.0.1:{pg_port}")
        procs["postgres"] = {"pid": postgres.pid(state), "port": pg_port,
                             "url": f"postgresql://127.0.0.1:{pg_port}",
                             "log": str(state.pg_log)}
        state.write_processes(procs)
        mlflow_db = mlflow_db or postgres.uri(state, pg_port, "mlflow", "psycopg2")
        prefect_db = prefect_db or postgres.uri(state, pg_port, "prefect", "asyncpg")
        sweep_db = postgres.uri(state, pg_port, "optuna", "psycopg2")

    host = mlflow_server.client_host(settings)
    mlflow_port = _port(settings, "SENTIMENT_MLFLOW_PORT", settings.mlflow_port, taken)
    taken.add(mlflow_port)
    prefect_port = _port(settings, "SENTIMENT_PREFECT_PORT", settings.prefect_port, taken)
    # Both servers migrate their schemas at first start: start them together.
    procs["mlflow"] = mlflow_server.start(state, settings, mlflow_port, mlflow_db, env)
    state.write_processes(procs)
    procs["prefect-server"] = prefect_server.start_server(state, settings, prefect_port,
                                                          prefect_db, env, host)
    state.write_processes(procs)
    mlflow_server.wait_ready(procs["mlflow"])
    step.done(f"MLflow server at {procs['mlflow']['url']}")
    prefect_server.wait_ready(procs["prefect-server"])
    step.done(f"Prefect server at {procs['prefect-server']['url']}")

    api = procs["prefect-server"]["api"]
    client_env = _client_env(state, settings, api, procs["mlflow"]["url"], sweep_db)
    prefect_server.ensure_pool(client_env)
    crash_detection.ensure(api, settings.crash_after_s)
    step.done(f"work pool {POOL} and the crash-detection automation")
    workers = []
    for i in range(1, settings.workers + 1):
        rec = prefect_server.start_worker(state, settings, i, client_env)
        procs[f"worker-{i}"] = rec
        workers.append(rec)
        state.write_processes(procs)
    prefect_server.deploy(client_env)
    step.done("prefect.yaml deployed")
    if workers:
        prefect_server.wait_workers(api, [w["worker_name"] for w in workers], workers)
        step.done(f"{len(workers)} workers polling {POOL}")

    write_atomic(state.env_file,
                 "# Server mode's addresses: `source` this file to point clients at it.\n"
                 f"export MLFLOW_TRACKING_URI={procs['mlflow']['url']}\n"
                 f"export PREFECT_API_URL={api}\n")
