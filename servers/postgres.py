"""A throwaway PostgreSQL cluster in the state folder, for MLflow's and Prefect's databases.

`initdb` and `pg_ctl` refuse to run as root: as root they run as the `postgres` user, and the
cluster's folder belongs to it. The cluster listens on 127.0.0.1 only (and on a unix socket in
the state folder); every connection needs the password in `postgres/password`, so other users
of the machine cannot read or write the stores through the port.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import subprocess
from pathlib import Path
from urllib.parse import quote

from servers.layout import LOOPBACK, State, write_atomic

USER = "sentiment"               # the cluster's superuser, owner of both databases
DATABASES = ("mlflow", "prefect", "optuna")  # optuna: the head sweeps' studies
CONF = "server-mode.conf"         # included by postgresql.conf; rewritten before each start
PG_BIN_DIRS = ("/usr/lib/postgresql/15/bin", "/usr/local/bin", "/usr/lib/postgresql/16/bin",
               "/usr/lib/postgresql/17/bin")


def binary(name: str) -> str:
    for d in PG_BIN_DIRS:
        if (Path(d) / name).exists():
            return str(Path(d) / name)
    found = shutil.which(name)
    if not found:
        raise SystemExit(f"servers: PostgreSQL's {name} is not installed "
                         f"(apt-get install postgresql), or set SENTIMENT_MLFLOW_DB_URI and "
                         f"SENTIMENT_PREFECT_DB_URI to use your own database")
    return found


def _as_owner(args: list[str]) -> list[str]:
    """`args` run as the `postgres` user when we are root (the server binaries refuse root)."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *args]
    return args


def _run(args: list[str], what: str, timeout: float = 600) -> subprocess.CompletedProcess:
    try:
        r = subprocess.run(_as_owner(args), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise SystemExit(f"servers: {what} did not finish within {timeout:.0f} s") from None
    if r.returncode != 0:
        tail = (r.stderr or r.stdout).strip().splitlines()[-1:] or [""]
        raise SystemExit(f"servers: {what} failed: {tail[0]}")
    return r


def _chown(path: Path) -> None:
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(path, pw.pw_uid, pw.pw_gid)


def password(state: State) -> str:
    return state.pg_password.read_text().strip()


def initialized(state: State) -> bool:
    return (state.pg_data / "PG_VERSION").exists()


def init(state: State) -> None:
    """Create the cluster (once): a random password, scram-sha-256 for every connection."""
    state.pg_dir.mkdir(parents=True, exist_ok=True)
    state.pg_socket.mkdir(exist_ok=True)
    for p in (state.pg_dir, state.pg_socket):
        _chown(p)
    if os.geteuid() == 0:
        probe = subprocess.run(_as_owner(["test", "-w", str(state.pg_dir)]))
        if probe.returncode != 0:
            raise SystemExit(f"servers: the postgres user cannot write {state.pg_dir}: a folder "
                             f"above it is closed to other users; set SENTIMENT_SERVERS_DIR "
                             f"to a folder it can reach (chmod o+x on the path)")
    write_atomic(state.pg_password, secrets.token_urlsafe(24) + "\n", mode=0o600)
    _chown(state.pg_password)
    _run([binary("initdb"), "-D", str(state.pg_data), "-U", USER,
          f"--pwfile={state.pg_password}", "--auth-local=scram-sha-256",
          "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C"], "initdb")
    with open(state.pg_data / "postgresql.conf", "a") as f:
        f.write(f"\ninclude_if_exists = '{CONF}'\n")


def running(state: State) -> bool:
    if not initialized(state):
        return False
    r = subprocess.run(_as_owner([binary("pg_ctl"), "status", "-D", str(state.pg_data)]),
                       capture_output=True, text=True)
    return r.returncode == 0


def port(state: State) -> int | None:
    """The port the cluster was last started on (from its settings file)."""
    try:
        for line in (state.pg_data / CONF).read_text().splitlines():
            if line.startswith("port"):
                return int(line.split("=")[1])
    except (FileNotFoundError, PermissionError):
        pass
    return None


def pid(state: State) -> int | None:
    try:
        return int((state.pg_data / "postmaster.pid").read_text().split()[0])
    except (FileNotFoundError, PermissionError, ValueError, IndexError):
        return None


def start(state: State, port_: int) -> None:
    """Start the cluster on 127.0.0.1:`port_` and create the databases that are missing."""
    socket_dir = str(state.pg_socket)
    # A unix socket path is limited to 107 bytes; a deeper state folder gets TCP only.
    sockets = socket_dir if len(socket_dir) + len("/.s.PGSQL.65535") < 107 else ""
    conf = state.pg_data / CONF
    settings = (f"port = {port_}\nlisten_addresses = '{LOOPBACK}'\n"
                f"unix_socket_directories = '{sockets}'\n")
    if os.geteuid() == 0:
        # The data folder is the postgres user's: write through it.
        subprocess.run(_as_owner(["sh", "-c", 'cat > "$1"', "sh", str(conf)]),
                       input=settings, text=True, check=True)
    else:
        write_atomic(conf, settings, mode=0o600)
    _run([binary("pg_ctl"), "start", "-D", str(state.pg_data), "-l", str(state.pg_log),
          "-w", "-t", "60"], f"PostgreSQL start (see {state.pg_log})")
    create_databases(state, port_)


def uri(state: State, port_: int, database: str, driver: str) -> str:
    return (f"postgresql+{driver}://{USER}:{quote(password(state), safe='')}"
            f"@{LOOPBACK}:{port_}/{database}")


def create_databases(state: State, port_: int) -> None:
    import psycopg2
    con = psycopg2.connect(host=LOOPBACK, port=port_, user=USER, password=password(state),
                           dbname="postgres", connect_timeout=10)
    try:
        con.autocommit = True
        with con.cursor() as cur:
            cur.execute("SELECT datname FROM pg_database")
            have = {row[0] for row in cur.fetchall()}
            for db in DATABASES:
                if db not in have:
                    cur.execute(f'CREATE DATABASE "{db}"')
    finally:
        con.close()


def stop(state: State) -> bool:
    """Stop the cluster (fast: open sessions are closed); True if it was running."""
    if not running(state):
        return False
    _run([binary("pg_ctl"), "stop", "-D", str(state.pg_data), "-m", "fast", "-w", "-t", "60"],
         "PostgreSQL stop")
    return True
