"""`prefect server start` on PostgreSQL (asyncpg), the `sentiment-process` work pool, the
deployments of prefect.yaml, and process workers that run them from this clone."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from servers.layout import POOL, REPO, Settings, State
from servers.processes import spawn, wait_http_ok


def prefect_bin() -> str:
    return str(Path(sys.executable).with_name("prefect"))


def start_server(state: State, settings: Settings, port: int, db_uri: str, env: dict,
                 host: str) -> dict:
    server_env = dict(env)
    server_env["PREFECT_API_DATABASE_CONNECTION_URL"] = db_uri
    # Prefect's defaults (5 s to connect, 10 s per statement) turn a busy machine into
    # "500 Internal Server Error" for clients: a new PostgreSQL connection forks a process.
    server_env.setdefault("PREFECT_SERVER_DATABASE_CONNECTION_TIMEOUT", "30")
    server_env.setdefault("PREFECT_SERVER_DATABASE_TIMEOUT", "60")
    args = [prefect_bin(), "server", "start", "--host", settings.host, "--port", str(port)]
    if env.get("SENTIMENT_PREFECT_UI", "1") == "0":
        args.append("--no-ui")
    record = spawn(args, state.log("prefect-server"), server_env, REPO)
    record.update(port=port, url=f"http://{host}:{port}", api=f"http://{host}:{port}/api")
    return record


def wait_ready(record: dict) -> None:
    # The first start runs every database migration on PostgreSQL.
    wait_http_ok(f"{record['api']}/health", record, 360, "the Prefect server")


def _cli(args: list[str], env: dict, what: str, timeout: float = 300) -> str:
    r = subprocess.run([prefect_bin(), *args], cwd=REPO, env=env, capture_output=True,
                       text=True, timeout=timeout)
    if r.returncode != 0:
        lines = (r.stdout + r.stderr).strip().splitlines()
        raise SystemExit(f"servers: {what} failed: {lines[-1] if lines else r.returncode}")
    return r.stdout


def ensure_pool(env: dict) -> None:
    """The process work pool of prefect.yaml, created when missing (an existing one, with any
    changes made to it, is kept)."""
    r = subprocess.run([prefect_bin(), "work-pool", "inspect", POOL], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        _cli(["work-pool", "create", POOL, "--type", "process"], env, f"creating {POOL}")


def deploy(env: dict) -> None:
    """Every deployment of prefect.yaml (re-deploying updates them in place)."""
    _cli(["--no-prompt", "deploy", "--all"], env, "prefect deploy --all")


def start_worker(state: State, settings: Settings, index: int, env: dict) -> dict:
    name = f"worker-{index}"
    args = [prefect_bin(), "worker", "start", "--pool", POOL, "--type", "process",
            "--name", f"sentiment-{name}", "--limit", str(settings.worker_limit)]
    record = spawn(args, state.log(name), env, REPO)
    record.update(pool=POOL, worker_name=f"sentiment-{name}")
    return record


def wait_workers(api: str, names: list[str], records: list[dict], timeout: float = 180) -> None:
    """Until every worker has reported to the pool since it started (a worker of that name
    from an earlier start is still listed, offline)."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from servers.processes import process
    deadline = time.monotonic() + timeout
    since = min(r["started"] for r in records)
    with temporary_settings(updates={PREFECT_API_URL: api}):
        with get_client(sync_client=True) as client:
            while time.monotonic() < deadline:
                for r in records:
                    if process(r) is None:
                        raise SystemExit(f"servers: a worker exited while starting; "
                                         f"see {r['log']}")
                seen = {w.name for w in client.read_workers_for_work_pool(POOL)
                        if w.last_heartbeat_time
                        and w.last_heartbeat_time.timestamp() >= since}
                if set(names) <= seen:
                    return
                time.sleep(1)
    raise SystemExit(f"servers: the workers did not report to {POOL} within {timeout:.0f} s; "
                     f"see {records[0]['log']}")
