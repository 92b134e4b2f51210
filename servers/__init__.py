"""Server mode on one machine: PostgreSQL, an MLflow tracking server and a Prefect server on
it, the `sentiment-process` work pool and its workers; `python -m servers start|stop|status`
(`make servers`, `make servers-stop`, `make servers-status`). See docs/server-mode.md.

Repository tooling, not part of the installed package: run it from the repository root.
"""
