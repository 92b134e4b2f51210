"""Promotion: gate a registered version against the champion and the bag-of-words baseline on
the candidate's own test set (``gate.decide``), and move the `champion` alias.

Atomic per model name: one promoter at a time (``promotion_lock``), and a compare-and-set on
the alias (re-read after moving it; re-decide against whoever moved it in between). Every
decision is kept on the candidate version as numbered tags ``promotion.<n>.<field>`` (n = 1, 2,
...; never overwritten; the verdict, the reason and the accuracies compared) and as the artifacts
``promotion/decision-<n>.md`` and ``.json`` (every field: time, gate, host, test set, ...) of
its run; the latest decision is also in the tags ``promotion_decision``, ``promotion_reason``,
``promotion_compared_to`` and ``promotion_count``, and opens the version's description.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import tempfile
import time
from pathlib import Path

from sentiment.tracking.behaviour_run import behaviour_of
from sentiment.tracking.names import (
    BASELINE_ROLE,
    CHAMPION,
    CONFIG_ARTIFACT,
    DATA_FINGERPRINT,
    DATA_SOURCE,
    DESCRIPTION_SEPARATOR,
    PART_ACCURACY,
    PROMOTED,
    ROLE,
    ROLLED_BACK,
    SLICE_METRIC,
    VERSION_ACCURACY,
    VERSION_RUN_ID,
    VERSION_TEST_SET,
)
from sentiment.tracking.store import connect, tracking_uri
from sentiment.training.outputs import METRICS

log = logging.getLogger(__name__)

AUDIT_PREFIX = "promotion."         # promotion.<n>.<field>: one numbered record per decision
# Re-decisions when another promoter moves the alias while this one decides; each one reads the
# new champion, so a few suffice unless promoters keep racing outside the lock.
MAX_REDECIDE = 5


def run_accuracy(client, run_id: str, run_dir: Path | None = None) -> float | None:
    """A run's test accuracy: its run folder's summary when given, else its metric."""
    if run_dir is not None and (run_dir / METRICS).exists():
        return float(json.loads((run_dir / METRICS).read_text())["test"]["accuracy"])
    try:
        return client.get_run(run_id).data.metrics.get("test_accuracy")
    except Exception:
        return None


def version_accuracy(client, mv) -> float | None:
    raw = (mv.tags or {}).get(VERSION_ACCURACY)
    if raw:
        try:
            return float(raw)
        except ValueError:
            pass
    return run_accuracy(client, mv.run_id) if mv.run_id else None


def baseline_on_test_set(client, name: str, test_set: str | None) -> dict | None:
    """The newest version of the bag-of-words baseline `name` tested on `test_set`, as the gate
    takes it: {accuracy, test_set, run_id, version}; None when there is none."""
    from mlflow.exceptions import MlflowException
    if not test_set:
        return None
    try:
        found = client.search_model_versions(f"name = '{name}'")
    except MlflowException:  # no baseline registered at all
        return None
    same = [v for v in found if (v.tags or {}).get(VERSION_TEST_SET) == test_set
            and (v.tags or {}).get(ROLE, BASELINE_ROLE) == BASELINE_ROLE]
    if not same:
        return None
    newest = max(same, key=lambda v: int(v.version))
    return {"accuracy": version_accuracy(client, newest), "test_set": test_set,
            "run_id": (newest.tags or {}).get(VERSION_RUN_ID) or newest.run_id,
            "version": int(newest.version)}


def candidate_parts(mv) -> dict[str, float]:
    """A blended version's parts alone ({part: test accuracy}), from its tags; {} otherwise."""
    from sentiment.blend.fit import PARTS
    tags = mv.tags or {}
    found = {}
    for part in PARTS:
        try:
            found[part] = float(tags[PART_ACCURACY.format(part=part)])
        except (KeyError, ValueError):
            pass
    return found


def current_champion(client, name: str):
    """The version holding the `champion` alias, or None."""
    from mlflow.exceptions import MlflowException
    try:
        return client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None


class _Incomparable(Exception):
    """The champion cannot be measured on the candidate's test set; the message says why."""


def _candidate_config(client, cand, cfg):
    """The Config the candidate was trained with (its run's config.json), with the data at the
    absolute place the run read it from; `cfg` when the run does not say."""
    from sentiment.config import Config
    run = client.get_run(cand.run_id)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            local = client.download_artifacts(cand.run_id, CONFIG_ARTIFACT, tmp)
            trained = Config.from_dict(json.loads(Path(local).read_text()))
        except Exception:
            trained = cfg
    source = run.data.tags.get(DATA_SOURCE)
    if source and Path(source).exists():
        trained = trained.replace(data=source)
    return trained, run


def _score_champion(client, store: str, name: str, champ, cand, cfg) -> float:
    """The champion's accuracy on the candidate's test split."""
    from sentiment.data.imdb import load_splits
    from sentiment.evaluation.metrics import classification_metrics
    from sentiment.tracking.model_uri import load_model_uri
    try:
        cand_cfg, run = _candidate_config(client, cand, cfg)
        splits = load_splits(cand_cfg)
    except Exception as e:
        raise _Incomparable(f"the candidate's test split cannot be loaded ({e})") from e
    fingerprint = run.data.tags.get(DATA_FINGERPRINT)
    if fingerprint and splits.fingerprint != fingerprint:
        raise _Incomparable(f"the candidate's data changed since it was tested (fingerprint "
                            f"{splits.fingerprint}, the run used {fingerprint})")
    rows = run.data.params.get("data.test_rows")
    if rows and int(rows) != len(splits.test):
        raise _Incomparable(f"the rebuilt test split has {len(splits.test)} reviews, the "
                            f"candidate was tested on {rows}")
    try:
        model = load_model_uri(f"models:/{name}/{champ.version}", store)
        probs = model.predict_proba(splits.test["text"].tolist())
    except Exception as e:
        raise _Incomparable(f"version {champ.version} cannot be loaded or scored "
                            f"({str(e).splitlines()[0] if str(e) else type(e).__name__})") from e
    return float(classification_metrics(splits.test["label"].to_numpy(), probs)["accuracy"])


def _champion_on_test_set(client, store, name, champ, cand, cfg) -> dict:
    """{version, accuracy on the candidate's test set, rescored, note}."""
    champ_set, cand_set = (champ.tags or {}).get(VERSION_TEST_SET), (cand.tags or {}).get(VERSION_TEST_SET)
    if champ_set and champ_set == cand_set:
        return {"version": int(champ.version), "accuracy": version_accuracy(client, champ),
                "rescored": False, "note": ""}
    why = (f"tested on test set {champ_set or 'unknown'}, the candidate on "
           f"{cand_set or 'unknown'}")
    acc = _score_champion(client, store, name, champ, cand, cfg)
    return {"version": int(champ.version), "accuracy": acc, "rescored": True,
            "note": f"{why}; re-scored on the candidate's test set"}


def _gate(client, store: str, cfg, cand, cand_acc, champ, baseline: dict | None,
          behaviour: dict | None = None):
    """(promoted, reason, side-by-side comparison) for the candidate against `champ`."""
    from sentiment import gate
    cand_v, cand_set = int(cand.version), (cand.tags or {}).get(VERSION_TEST_SET)
    if baseline is None:  # every door looks the baseline up the same way
        baseline = baseline_on_test_set(client, cfg.baseline_model_name, cand_set)
    base = None
    if baseline is not None:
        base = {"accuracy": baseline.get("accuracy"), "run_id": baseline.get("run_id"),
                "version": baseline.get("version"), "test_set": baseline.get("test_set")}
        if not cand_set or base["test_set"] != cand_set:
            reason = (f"the baseline was tested on test set {base['test_set'] or 'unknown'}, the "
                      f"candidate on {cand_set or 'unknown'}: no like-for-like comparison")
            return False, reason, gate.side_by_side(cand_set, cand_acc, None, base)
    if champ is not None and int(champ.version) == cand_v:
        compared = gate.side_by_side(cand_set, cand_acc, None, base)
        return False, f"version {cand_v} already holds the alias {CHAMPION!r}", compared
    champion = None
    if champ is not None:
        try:
            champion = _champion_on_test_set(client, store, cfg.model_name, champ, cand, cfg)
        except _Incomparable as e:
            reason = (f"cannot compare with the {CHAMPION} (version {champ.version}): it was "
                      f"tested on another test set and re-scoring it failed: {e}")
            return False, reason, gate.side_by_side(cand_set, cand_acc, None, base)
    slices = _slices(client, cand, champ, champion)
    promoted, reason = gate.decide(
        cand_acc, champion["accuracy"] if champion else None, cfg.min_accuracy,
        cfg.min_improvement, base["accuracy"] if base else None, cfg.min_lift_over_baseline,
        behaviour, cfg.max_behaviour_failure_rate, slices["rows"], cfg.max_slice_loss)
    if promoted and champion and champion["rescored"]:
        reason += " (the champion re-scored on the candidate's test set)"
    compared = gate.side_by_side(cand_set, cand_acc, champion, base)
    compared["slices"] = slices
    return promoted, reason, compared


def run_slices(client, run_id: str | None) -> dict[str, float]:
    """{slice: test accuracy} a run logged (``evaluation.slices``); {} when it logged none."""
    if not run_id:
        return {}
    try:
        metrics = client.get_run(run_id).data.metrics
    except Exception:
        return {}
    from sentiment.evaluation.slices import SLICES
    pre, post = SLICE_METRIC.split("{slice}")
    found = {k[len(pre):-len(post)]: v for k, v in metrics.items()
             if k.startswith(pre) and k.endswith(post)}
    # In the slices' own order (quartiles first), whatever order the store returns.
    rank = {s: i for i, s in enumerate(SLICES)}
    return dict(sorted(found.items(), key=lambda kv: (rank.get(kv[0], len(rank)), kv[0])))


def _slices(client, cand, champ, champion: dict | None) -> dict:
    """{rows: candidate and champion per slice, note}: the champion's slices only when it was
    tested on the candidate's reviews (a re-scored champion has no per-slice figures there)."""
    mine, theirs, note = run_slices(client, cand.run_id), None, ""
    if champion is not None and champion["rescored"]:
        note = "The champion was tested on another test set: no slice accuracies on these reviews."
    elif champ is not None and int(champ.version) != int(cand.version):
        theirs = run_slices(client, champ.run_id)
        a, b = cand.tags or {}, champ.tags or {}
        if (a.get("encoder"), a.get("max_length")) != (b.get("encoder"), b.get("max_length")):
            note = ("`cut` and `whole` follow each model's own tokenizer and max_length "
                    f"(candidate {a.get('encoder')} {a.get('max_length')}, champion "
                    f"{b.get('encoder')} {b.get('max_length')}); the other slices are the "
                    "same reviews.")
    from sentiment import gate
    return {"rows": gate.slice_rows(mine, theirs), "note": note}


def _next_audit_index(tags: dict) -> int:
    seen = [int(k.split(".")[1]) for k in tags
            if k.startswith(AUDIT_PREFIX) and k.count(".") == 2 and k.split(".")[1].isdigit()]
    return max(seen, default=0) + 1


# What each decision keeps as numbered version tags (the rest is in its JSON artifact), and
# the latest decision's tags: what readers of the registry filter and compare on.
# "champion", "time", "timestamp" and "by": the champion history (``tracking.champion``) reads
# every move of the alias from these, in the registry.
AUDIT_TAGS = ("decision", "reason", "champion", "time", "timestamp", "by", "champion_accuracy",
              "champion_rescored", "baseline_accuracy")
LATEST_TAGS = {"promotion_decision": "decision", "promotion_reason": "reason",
               "promotion_compared_to": "champion"}
DECISION_ARTIFACT = "promotion/decision-{n}"  # .md to read, .json with every field


def _acc_cell(x: str) -> str:
    return f"{float(x):.4f}" if x else "–"


def _diff_cell(cand: str, other: str) -> str:
    return f"{float(cand) - float(other):+.4f}" if cand and other else ""


def decision_summary(name: str, version: int, record: dict, n: int, run_id: str | None) -> str:
    """The decision as the first lines of the version's page: verdict, candidate, champion and
    baseline on one test set with the candidate's differences, and the reason in full."""
    verdict = {
        PROMOTED: f"**Promoted**: `{name}@champion` now points to version {version}",
        ROLLED_BACK: f"**Rolled back**: `{name}@champion` points to version {version} again, "
                     f"from version {record['champion']}"}.get(
        record["decision"],
        f"**{'Rollback refused' if record['decision'] == 'rollback refused' else 'Not promoted'}"
        "**: the `champion` alias stays "
        + (f"on version {record['champion']}" if record["champion"] != "none" else "unset"))
    cand = record["candidate_accuracy"]
    champ = ("–" if record["champion"] == "none" else f"version {record['champion']}"
             + (" (re-scored here)" if record["champion_rescored"] == "true" else ""))
    base = "bag-of-words" + (f", run `{record['baseline_run_id']}`"
                             if record["baseline_run_id"] else "")
    where = f" in run `{run_id}`" if run_id else ""
    return "\n".join([
        f"{verdict} (gate decision {n}, {record['time']}).",
        "",
        f"| on test set `{record['test_set'] or 'unknown'}` | model | test accuracy | "
        "candidate's difference |",
        "|---|---|---|---|",
        f"| candidate | version {version} | {_acc_cell(cand)} | |",
        f"| champion | {champ} | {_acc_cell(record['champion_accuracy'])} | "
        f"{_diff_cell(cand, record['champion_accuracy'])} |",
        f"| baseline | {base} | {_acc_cell(record['baseline_accuracy'])} | "
        f"{_diff_cell(cand, record['baseline_accuracy'])} |",
        "",
        f"Reason: {record['reason']}.",
        "",
        f"Gate: {record['gate']}. Every field: `{DECISION_ARTIFACT.format(n=n)}.json`{where}.",
    ])


def _log_comparison(client, run_id: str, version: int, record: dict, n: int) -> None:
    """Candidate, champion and baseline on the candidate's test set, as a chart beside the
    decision (``promotion/comparison-<n>.png``)."""
    from sentiment.evaluation.report import plot_comparison
    models = [(f"candidate v{version}", record["candidate_accuracy"])]
    if record["champion_accuracy"]:
        models.append((f"champion v{record['champion']}", record["champion_accuracy"]))
    if record["baseline_accuracy"]:
        models.append(("baseline", record["baseline_accuracy"]))
    if not models[0][1]:
        return
    rows = client.get_run(run_id).data.params.get("data.test_rows")
    with tempfile.TemporaryDirectory() as tmp:
        path = plot_comparison([(m, float(a)) for m, a in models], int(rows or 0),
                               record["test_set"] or None, Path(tmp) / f"comparison-{n}.png")
        client.log_artifact(run_id, str(path), "promotion")


def record_decision(client, name: str, cand, record: dict, markdown: str) -> int:
    """The decision as the version's next numbered audit record, its latest tags and the top
    of its description; every field and the markdown in the run's artifacts. Returns the
    record's number."""
    fresh = client.get_model_version(name, str(cand.version))
    n = _next_audit_index(fresh.tags or {})
    for key in AUDIT_TAGS:
        client.set_model_version_tag(name, str(cand.version), f"{AUDIT_PREFIX}{n}.{key}",
                                     record[key])
    latest = {**{tag: record[key] for tag, key in LATEST_TAGS.items()},
              "promotion_count": str(n)}
    for key, value in latest.items():
        client.set_model_version_tag(name, str(cand.version), key, value)
    registered = (fresh.description or "").split(DESCRIPTION_SEPARATOR, 1)[-1]
    summary = decision_summary(name, int(cand.version), record, n, cand.run_id)
    client.update_model_version(name, str(cand.version),
                                description=summary + DESCRIPTION_SEPARATOR + registered)
    if cand.run_id:
        try:
            client.log_text(cand.run_id, markdown, f"{DECISION_ARTIFACT.format(n=n)}.md")
            client.log_dict(cand.run_id, {"number": n, **record},
                            f"{DECISION_ARTIFACT.format(n=n)}.json")
            _log_comparison(client, cand.run_id, int(cand.version), record, n)
        except Exception as e:  # the tags are the record; the artifact is for reading
            log.warning("could not log the promotion decision to run %s: %s", cand.run_id, e)
    return n


def _fmt_opt(x) -> str:
    return "" if x is None else repr(float(x))


def actor() -> str:
    """Who acts, when the caller does not say (a flow passes its flow run): user, host, pid."""
    import getpass
    try:
        user = getpass.getuser()
    except Exception:  # no user name in a bare container
        user = "unknown"
    return f"{user}@{socket.gethostname()} pid {os.getpid()}"


def promote(cfg, version: int | None = None, baseline: dict | None = None,
            by: str | None = None) -> dict:
    """Move alias `champion` to `version` (default: the newest) if it passes the gate of
    ``gate.decide`` on one test set: `min_accuracy`, a lift over the bag-of-words baseline
    tested on the candidate's test set (the newest version of ``cfg.baseline_model_name``
    tagged with it; `baseline`, a dict {accuracy, test_set, run_id, version}, replaces that
    look-up), and a gain over the champion (re-scored on the candidate's test set when it was
    tested on another). One promoter at a time per model; the decision is recorded on the
    version."""
    from mlflow.exceptions import MlflowException

    from sentiment import gate
    from sentiment.tracking.promotion_lock import promotion_lock
    uri = tracking_uri(cfg)
    _, client = connect(uri, cfg)
    name = cfg.model_name
    versions = client.search_model_versions(f"name = '{name}'")
    if not versions:
        raise ValueError(f"registered model {name!r} has no versions in {uri}")
    cand_v = int(version) if version is not None else max(int(v.version) for v in versions)
    try:
        cand = client.get_model_version(name, str(cand_v))
    except MlflowException as e:
        raise ValueError(f"registered model {name!r} has no version {cand_v}") from e
    cand_acc = version_accuracy(client, cand)
    candidate = {"version": cand_v, "accuracy": cand_acc}
    settings = (f"min_accuracy={cfg.min_accuracy}, min_improvement={cfg.min_improvement}, "
                f"min_lift_over_baseline={cfg.min_lift_over_baseline}, "
                f"max_behaviour_failure_rate={cfg.max_behaviour_failure_rate}, "
                f"max_slice_loss={cfg.max_slice_loss}")
    # The behavioural suite, before the lock: loading the model takes a while.
    behaviour = behaviour_of(client, uri, name, cand)
    with promotion_lock(client, uri, name, cfg.promotion_lock_timeout_s):
        notes = []
        for _ in range(MAX_REDECIDE):
            champ = current_champion(client, name)
            promoted, reason, compared = _gate(client, uri, cfg, cand, cand_acc, champ, baseline,
                                               behaviour)
            # Compare-and-set: act only if the champion is still the one just compared with.
            now = current_champion(client, name)
            if version_or_none(now) != version_or_none(champ):
                notes.append(f"the {CHAMPION} moved to version {version_or_none(now)} while "
                             "deciding; decided again")
                continue
            if not promoted:
                break
            client.set_registered_model_alias(name, CHAMPION, str(cand_v))
            after = current_champion(client, name)
            if version_or_none(after) == cand_v:
                break
            notes.append(f"another promoter moved the {CHAMPION} to version "
                         f"{version_or_none(after)}; decided again against it")
        else:
            promoted = version_or_none(current_champion(client, name)) == cand_v
            reason = (f"the {CHAMPION} kept moving while deciding ({MAX_REDECIDE} attempts); "
                      f"version {cand_v} {'holds' if promoted else 'does not hold'} it")
        if notes:
            reason = f"{reason} ({'; '.join(notes)})"
        before = None
        if champ is not None:
            before = {"version": int(champ.version), "accuracy": version_accuracy(client, champ)}
        after_v = candidate if promoted else before
        compared["candidate_parts"] = candidate_parts(cand)
        # A refusal before the comparison still shows the candidate's own slices.
        compared.setdefault("slices", _slices(client, cand, None, None))
        md = gate.markdown_report(name, promoted, reason, candidate, before, after_v,
                                       cfg.min_accuracy, cfg.min_improvement, compared,
                                       cfg.min_lift_over_baseline)
        champ_behaviour = None
        if champ is not None and int(champ.version) != cand_v:
            champ_behaviour = behaviour_of(client, uri, name, champ)
        compared["behaviour"] = {"candidate": behaviour, "champion": champ_behaviour}
        md += "\n\n" + gate.behaviour_markdown(behaviour, champ_behaviour,
                                                 cfg.max_behaviour_failure_rate)
        md += "\n\n" + gate.slices_markdown(compared["slices"]["rows"],
                                              compared["slices"]["note"], cfg.max_slice_loss)
        champion_cmp, base_cmp = compared.get("champion"), compared.get("baseline")
        record = {"decision": PROMOTED if promoted else "rejected", "reason": reason,
                  "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "timestamp": repr(time.time()),
                  "gate": settings, "by": by or actor(),
                  "candidate_accuracy": _fmt_opt(cand_acc),
                  "test_set": compared.get("test_set") or "",
                  "champion": str(before["version"]) if before else "none",
                  "champion_accuracy": _fmt_opt(champion_cmp and champion_cmp.get("accuracy")),
                  "champion_rescored": str(bool(champion_cmp and champion_cmp.get("rescored"))).lower(),
                  "baseline_accuracy": _fmt_opt(base_cmp and base_cmp.get("accuracy")),
                  "baseline_run_id": (base_cmp or {}).get("run_id") or "",
                  "lift_over_baseline": _fmt_opt(compared.get("lift_over_baseline")),
                  **{f"{p}_accuracy": _fmt_opt(a) for p, a in compared["candidate_parts"].items()},
                  "behaviour_failure_rates": json.dumps((behaviour or {}).get("rates")
                                                        or (behaviour or {}).get("error")),
                  "champion_behaviour_failure_rates": json.dumps(
                      (champ_behaviour or {}).get("rates") or (champ_behaviour or {}).get("error")),
                  "slices": json.dumps(compared["slices"]["rows"])}
        n = record_decision(client, name, cand, record, md)
        if promoted:
            from sentiment.tracking.champion import publish_history
            publish_history(client, name)
    return {"promoted": promoted, "reason": reason, "model_name": name, "candidate": candidate,
            "champion_before": before, "champion_after": after_v, "compared": compared,
            "audit_record": n, "markdown": md}


def version_or_none(mv) -> int | None:
    return None if mv is None else int(mv.version)
