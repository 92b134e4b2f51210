"""The `champion` alias over time: who holds it, every move it made, and going back.

Everything lives in the registry, so every client sees the same: each decision is a numbered
record ``promotion.<n>.*`` on the version it concerns (``promotion.record_decision``); the
moves of the alias are the records whose decision is ``promoted`` or ``rolled back``, and
their ``champion`` field names the version that held the alias before. The history is also
written, as a table, on the registered model's description (its page in the MLflow UI).

A rollback is a decision like a promotion: it takes the same promotion lock, moves the alias
by compare-and-set and is recorded on the version it moves the alias to. It skips the accuracy
gate (undoing a bad promotion is what it is for) but refuses a version that no longer loads,
that would need pickle to load, or whose files differ from the checksums recorded when it was
registered.
"""

from __future__ import annotations

import math
import tempfile
import time
from datetime import datetime
from pathlib import Path

from sentiment.tracking.names import (
    BASELINE_ROLE,
    CHAMPION,
    PROMOTED,
    ROLE,
    ROLLED_BACK,
    VERSION_TEST_SET,
)
from sentiment.tracking.promotion import (
    AUDIT_PREFIX,
    MAX_REDECIDE,
    actor,
    current_champion,
    record_decision,
    version_accuracy,
    version_or_none,
)
from sentiment.tracking.store import connect, tracking_uri

MOVES = (PROMOTED, ROLLED_BACK)
# Where the history starts on the registered model's description; what comes before is kept.
HISTORY_HEADING = "### Champion history"
# Rows of the history on the description (the newest); `sentiment champion history` has all.
DESCRIPTION_ROWS = 20
# A review any loadable model scores; a rollback target must return a probability for it.
PROBE_TEXT = "A wonderful film, I loved every minute of it."


class RollbackRefused(ValueError):
    """The rollback target cannot hold the alias; the message says why."""


def _records(mv) -> dict[int, dict]:
    """A version's numbered decision records: {n: {field: value}}."""
    out: dict[int, dict] = {}
    for key, value in (mv.tags or {}).items():
        if not key.startswith(AUDIT_PREFIX) or key.count(".") != 2:
            continue
        _, n, field = key.split(".")
        if n.isdigit():
            out.setdefault(int(n), {})[field] = value
    return out


def _when(record: dict) -> float:
    """A record's time in seconds since the epoch (`timestamp`, or the older `time` field)."""
    try:
        return float(record["timestamp"])
    except (KeyError, ValueError):
        pass
    try:
        return datetime.strptime(record.get("time", ""), "%Y-%m-%dT%H:%M:%S%z").timestamp()
    except ValueError:
        return 0.0


def _versions(client, name: str) -> list:
    from mlflow.exceptions import MlflowException
    try:
        client.get_registered_model(name)  # an unknown name would list no versions, silently
        return client.search_model_versions(f"name = '{name}'")
    except MlflowException as e:
        raise ValueError(f"unknown registered model {name!r}") from e


def history(client, name: str) -> list[dict]:
    """Every move of the alias, oldest first: {to, from, kind, time, timestamp, by, reason,
    record} (from: None when there was no champion)."""
    moves = []
    for mv in _versions(client, name):
        for n, rec in _records(mv).items():
            if rec.get("decision") not in MOVES:
                continue
            before = rec.get("champion", "none")
            moves.append({"to": int(mv.version),
                          "from": int(before) if before.isdigit() else None,
                          "kind": rec["decision"], "time": rec.get("time", ""),
                          "timestamp": _when(rec), "by": rec.get("by", ""),
                          "reason": rec.get("reason", ""), "record": n})
    return sorted(moves, key=lambda m: (m["timestamp"], m["to"], m["record"]))


def previous_holder(moves: list[dict], current: int | None) -> int | None:
    """The version a rollback returns to by default: the champion before the promotion that
    put `current` there. Promotions stack up and rollbacks unwind them, so rolling back twice
    goes two promotions back (not back and forth between two versions)."""
    stack: list[int] = []
    for m in moves:
        if m["kind"] == ROLLED_BACK and m["to"] in stack:
            del stack[stack.index(m["to"]) + 1:]
        else:
            # A holder the gate did not put there (the alias set by hand) still counts.
            if m["from"] is not None and (not stack or stack[-1] != m["from"]):
                stack.append(m["from"])
            stack.append(m["to"])
    if current is None or current not in stack:
        # The alias was moved outside the gate: its last recorded holder before it.
        return stack[-1] if stack and stack[-1] != current else None
    i = stack.index(current)
    return stack[i - 1] if i > 0 else None


def show(cfg) -> dict:
    """The champion: version, since when, the decision that put it there, its test accuracy
    and test set; {"version": None} when the alias is unset."""
    _, client = connect(tracking_uri(cfg), cfg)
    name = cfg.model_name
    moves = history(client, name)
    champ = current_champion(client, name)
    if champ is None:
        return {"model_name": name, "version": None, "moves": len(moves)}
    mine = [m for m in moves if m["to"] == int(champ.version)]
    last = mine[-1] if mine else None
    return {"model_name": name, "version": int(champ.version),
            "since": last["time"] if last else None,
            "decision": last,  # None: the alias was set outside the gate
            "test_accuracy": version_accuracy(client, champ),
            "test_set": (champ.tags or {}).get(VERSION_TEST_SET),
            "run_id": champ.run_id, "moves": len(moves),
            "rollback_target": previous_holder(moves, int(champ.version))}


def _fmt_when(m: dict) -> str:
    return m["time"] or "–"


def history_markdown(name: str, moves: list[dict], limit: int | None = None) -> str:
    """The moves as a markdown table, newest first (`limit`: only the newest ones)."""
    shown = list(reversed(moves))[:limit] if limit else list(reversed(moves))
    lines = [HISTORY_HEADING, "",
             f"Every move of `models:/{name}@{CHAMPION}`, newest first"
             + (f" (the last {len(shown)} of {len(moves)}; `sentiment champion history` lists "
                "all)" if len(shown) < len(moves) else "") + ":", "",
             "| when | from | to | how | by | reason |", "|---|---|---|---|---|---|"]
    for m in shown:
        reason = m["reason"].replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {_fmt_when(m)} | {m['from'] if m['from'] is not None else '–'} | "
                     f"{m['to']} | {m['kind']} | {m['by'] or '–'} | {reason} |")
    if not moves:
        lines.append("| – | – | – | – | – | no move recorded yet |")
    return "\n".join(lines)


def publish_history(client, name: str) -> str:
    """Write the history table on the registered model's description, after what it already
    says (its own text is kept); returns the table."""
    table = history_markdown(name, history(client, name), DESCRIPTION_ROWS)
    old = client.get_registered_model(name).description or ""
    own = old.split(HISTORY_HEADING)[0].rstrip()
    client.update_registered_model(name, description=(own + "\n\n" if own else "") + table)
    return table


def check_loadable(client, name: str, version: int, store: str) -> list[str]:
    """Why `version` cannot hold the alias ([] when it can): files that differ from the
    checksums recorded at registration, a model that needs pickle, one that does not load or
    does not score a review. Checked on one downloaded copy, which is also what is loaded."""
    from mlflow.models import Model

    from sentiment.tracking import checksums
    from sentiment.tracking.model_uri import PyfuncPredictor, pickle_risk
    mv = client.get_model_version(name, str(version))
    notes = []
    with tempfile.TemporaryDirectory() as tmp:
        try:
            folder = checksums.download_version(client, name, version, store, Path(tmp))
        except Exception as e:
            return [f"its files cannot be read from the registry ({_first_line(e)})"]
        expected = checksums.recorded(mv)
        if expected is not None:
            problems = checksums.mismatches(expected, folder)
            if problems:
                shown = ", ".join(problems[:5]) + (" ..." if len(problems) > 5 else "")
                return [f"its files differ from the checksums recorded at registration "
                        f"({shown})"]
        else:
            notes.append("no file checksums were recorded at its registration: not verified")
        try:
            risk = pickle_risk(Model.load(str(folder / "MLmodel")))
        except Exception as e:
            return [f"its MLmodel cannot be read ({_first_line(e)})"]
        if risk:
            return [f"loading it needs pickle: {risk}"]
        try:
            import mlflow
            model = PyfuncPredictor(mlflow.pyfunc.load_model(str(folder)), f"version {version}")
            p = float(model.predict_proba([PROBE_TEXT])[0])
        except Exception as e:
            return [f"it no longer loads or scores a review ({_first_line(e)})"]
        if not math.isfinite(p) or not 0.0 <= p <= 1.0:
            return [f"it scores a review as {p!r}, not a probability"]
    return notes and [f"note: {n}" for n in notes]


def _first_line(e: Exception) -> str:
    return str(e).splitlines()[0] if str(e) else type(e).__name__


def _numbers(client, mv) -> dict:
    return {"version": int(mv.version), "accuracy": version_accuracy(client, mv),
            "test_set": (mv.tags or {}).get(VERSION_TEST_SET)}


def rollback_markdown(name: str, done: bool, reason: str, before: dict | None,
                      target: dict | None) -> str:
    def row(label, v):
        if not v:
            return f"| {label} | – | – | – |"
        acc = "–" if v.get("accuracy") is None else f"{v['accuracy']:.4f}"
        return f"| {label} | {v['version']} | {acc} | `{v.get('test_set') or 'unknown'}` |"
    verdict = "**rolled back**" if done else "**refused**"
    return "\n".join([
        f"### Rollback of `{name}`: {verdict}", "",
        "The accuracy gate is not applied to a rollback; the target's recorded numbers:", "",
        "| | version | test accuracy | test set |", "|---|---|---|---|",
        row("champion before", before), row("rollback target", target), "",
        f"Reason: {reason}"])


def rollback(cfg, to: int | None = None, reason: str = "", by: str | None = None) -> dict:
    """Move the `champion` alias back to version `to` (default: ``previous_holder``) under the
    promotion lock, by compare-and-set, and record the decision on that version. Raises
    ``RollbackRefused`` (recorded too, when the target exists) if the target cannot hold the
    alias; ValueError for a missing reason, champion or version."""
    from mlflow.exceptions import MlflowException

    from sentiment.tracking.promotion_lock import promotion_lock
    reason = (reason or "").strip()
    if not reason:
        raise ValueError("a rollback needs a reason (--reason TEXT): it is recorded with it")
    uri = tracking_uri(cfg)
    _, client = connect(uri, cfg)
    name = cfg.model_name
    by = by or actor()
    with promotion_lock(client, uri, name, cfg.promotion_lock_timeout_s):
        for _ in range(MAX_REDECIDE):
            champ = current_champion(client, name)
            if champ is None:
                raise ValueError(f"{name!r} has no {CHAMPION}: nothing to roll back")
            target_v = int(to) if to is not None else previous_holder(
                history(client, name), int(champ.version))
            if target_v is None:
                raise ValueError(f"version {champ.version} of {name!r} is the first recorded "
                                 f"{CHAMPION}: no earlier one to roll back to (name one with "
                                 "--to VERSION)")
            if target_v == int(champ.version):
                raise ValueError(f"version {target_v} already holds the alias {CHAMPION!r}")
            try:
                target = client.get_model_version(name, str(target_v))
            except MlflowException as e:
                raise ValueError(f"registered model {name!r} has no version {target_v}") from e
            if (target.tags or {}).get(ROLE) == BASELINE_ROLE:
                raise ValueError(f"version {target_v} of {name!r} is a bag-of-words baseline")
            problems = check_loadable(client, name, target_v, uri)
            refusals = [p for p in problems if not p.startswith("note: ")]
            notes = [p[len("note: "):] for p in problems if p.startswith("note: ")]
            before, numbers = _numbers(client, champ), _numbers(client, target)
            if refusals:
                why = (f"rollback from version {champ.version} to {target_v} refused: "
                       f"{'; '.join(refusals)}")
                _record(client, name, target, "rollback refused", why, by, before, numbers, False)
                raise RollbackRefused(why)
            # Compare-and-set: move only if the champion is still the one the target was
            # chosen against (the lock keeps gate-following writers out; this catches others).
            if version_or_none(current_champion(client, name)) != int(champ.version):
                continue
            client.set_registered_model_alias(name, CHAMPION, str(target_v))
            if version_or_none(current_champion(client, name)) == target_v:
                break
        else:
            raise RuntimeError(f"the {CHAMPION} of {name!r} kept moving during the rollback "
                               f"({MAX_REDECIDE} attempts); nothing rolled back")
        full = (f"rollback from version {champ.version}: {reason}"
                + (f" ({'; '.join(notes)})" if notes else ""))
        n, md = _record(client, name, target, ROLLED_BACK, full, by, before, numbers, True)
    return {"rolled_back": True, "model_name": name, "from": before, "to": numbers,
            "reason": full, "by": by, "audit_record": n, "markdown": md}


def _record(client, name, target, decision, reason, by, before, numbers, done):
    """The rollback's decision record on the target version (and its markdown on the target's
    run); the history refreshed on the registered model. Returns (record number, markdown with
    the history)."""
    def fmt(x):
        return "" if x is None else repr(float(x))
    record = {"decision": decision, "reason": reason,
              "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "timestamp": repr(time.time()),
              "gate": "rollback: the accuracy gate is not applied", "by": by,
              "candidate_accuracy": fmt(numbers["accuracy"]),
              "test_set": numbers["test_set"] or "", "champion": str(before["version"]),
              "champion_accuracy": fmt(before["accuracy"]), "champion_rescored": "false",
              "baseline_accuracy": "", "baseline_run_id": ""}
    md = rollback_markdown(name, done, reason, before, numbers)
    n = record_decision(client, name, target, record, md)
    return n, md + "\n\n" + publish_history(client, name)
