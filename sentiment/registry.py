"""The model registry: a trained run exported as a pyfunc model, registered as a version, and
the promotion gate that moves the `champion` alias.

The model is logged as code (`pyfunc_model.py`) with plain-file artifacts: nothing pickled.

Registration is idempotent: a retry finds the version its run already created (by run id) and
completes it instead of creating another; the version's tags are the run's own metrics, checked.

Promotion is atomic per model name: one promoter at a time (``promotion_lock``), and a
compare-and-set on the alias (re-read after moving it; re-decide against whoever moved it in
between). Every decision is kept on the candidate version as numbered tags
``promotion.<n>.<field>`` (n = 1, 2, ...; never overwritten) and as the artifact
``promotion/decision-<n>.md`` of its run; the latest decision is also in the tags
``promotion_decision``, ``promotion_reason``, ``promotion_compared_to``, ``promotion_gate`` and
``promotion_time``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path

from . import preprocessing
from .mlflow_store import apply_env_defaults, connect, tracking_uri
from .promotion import CHAMPION
from .provenance import RUNTIME_PACKAGES, package_version
from .tracked_run import run_dir_of

log = logging.getLogger(__name__)

MODEL_NAME_IN_RUN = "model"         # the logged model's name inside its run
TEST_SET_RUN_TAG = "data.test_set"  # a run's test split fingerprint (texts and labels)
TEST_SET_TAG = "test_set"           # the same on the version: what its test accuracy is about
AUDIT_PREFIX = "promotion."         # promotion.<n>.<field>: one numbered record per decision
# Re-decisions when another promoter moves the alias while this one decides; each one reads the
# new champion, so a few suffice unless promoters keep racing outside the lock.
MAX_REDECIDE = 5
PYFUNC_FILE = Path(__file__).with_name("pyfunc_model.py")
# The encoder files a pyfunc model needs; READMEs carry the encoder's license and attribution.
ENCODER_FILES = ("config.json", "model.safetensors", "model.safetensors.index.json",
                 "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                 "vocab.txt", "vocab.json", "merges.txt", "added_tokens.json", "spiece.model",
                 "sentencepiece.bpe.model", "README.md")
# Run metrics that describe the logged model, and the split (dataset context) each was
# measured on: the model's page lists them and, through them, the datasets used.
MODEL_METRICS = {"test_": "test", "best_val_loss": "validation"}


def pip_requirements() -> list[str]:
    # Listing them avoids MLflow's requirement inference, which imports the model and may
    # reach the network. torch's "+cpu"/"+cu124" names a wheel index, not a version.
    return [f"{p}=={v.split('+', 1)[0]}" for p in RUNTIME_PACKAGES if (v := package_version(p))]


def export_encoder(name: str, revision: str | None, dest: Path) -> Path:
    """The encoder and tokenizer as plain files in dest. Local folders are copied file by file
    (safetensors weights only); random-init and Hub encoders are saved with save_pretrained,
    which writes safetensors."""
    from . import encoders
    dest.mkdir(parents=True, exist_ok=True)
    src = None
    if name not in encoders.RANDOM:
        spec = encoders.resolve(name, revision)
        if spec.local and (Path(spec.location) / "model.safetensors").exists():
            src = Path(spec.location)
    if src is not None:
        for f in ENCODER_FILES:
            if (src / f).is_file():
                shutil.copy2(src / f, dest / f)
        return dest
    encoder, tokenizer, _ = encoders.load_encoder(name, revision)
    encoder.save_pretrained(dest, safe_serialization=True)
    tokenizer.save_pretrained(dest)
    return dest


def export_code(dest: Path) -> Path:
    """A clean copy of the `sentiment` package for code_paths (no caches, no bytecode)."""
    pkg = Path(__file__).resolve().parent
    target = dest / pkg.name
    shutil.copytree(pkg, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return target


def model_signature():
    """text -> probability, label, with a `threshold` parameter; and the input example.

    The `text` column is declared as optional and of any type on purpose: the model itself
    checks it (pyfunc_model.InputRejected: a missing column, a text that is not a string or is
    empty, each refused in one line). A `string` column would make the scoring server cast
    numbers to strings ({"inputs": [1, 2]} scored as "1", "2"), and a required one would be
    refused by MLflow's schema check with a message quoting the whole request."""
    import pandas as pd
    from mlflow.models import ModelSignature, infer_signature
    from mlflow.types.schema import AnyType, ColSpec, Schema
    from .predict import EXAMPLES
    example = pd.DataFrame({"text": EXAMPLES})
    output = pd.DataFrame({"probability": [0.1, 0.9], "label": ["neg", "pos"]})
    inferred = infer_signature(example, output, params={"threshold": 0.5})
    inputs = Schema([ColSpec(AnyType(), "text", required=False)])
    return ModelSignature(inputs=inputs, outputs=inferred.outputs, params=inferred.params), example


def run_accuracy(client, run_id: str, run_dir: Path | None = None) -> float | None:
    from .training import METRICS
    if run_dir is not None and (run_dir / METRICS).exists():
        return float(json.loads((run_dir / METRICS).read_text())["test"]["accuracy"])
    try:
        return client.get_run(run_id).data.metrics.get("test_accuracy")
    except Exception:
        return None


def _unused_step(client, run) -> int:
    """One past the last step any metric of the run uses.

    log_model links to the model every metric the run holds at the model's step. System
    metrics share step 0 with the test metrics, so a model logged at step 0 would carry the
    machine's CPU and disk figures; at a step of its own it carries only what
    _link_model_metrics gives it."""
    steps = [m.step for key in run.data.metrics for m in client.get_metric_history(run.info.run_id, key)]
    return max(steps, default=0) + 1


def _link_model_metrics(client, run, model_id: str) -> None:
    """The test and validation metrics onto the logged model, each with its dataset."""
    from mlflow.entities import Metric
    datasets = {}
    for d in run.inputs.dataset_inputs if run.inputs else []:
        for t in d.tags:
            if t.key == "mlflow.data.context":
                datasets[t.value] = d.dataset
    metrics = []
    for key in run.data.metrics:
        context = next((c for prefix, c in MODEL_METRICS.items() if key.startswith(prefix)), None)
        if context is None:
            continue
        last = client.get_metric_history(run.info.run_id, key)[-1]
        ds = datasets.get(context)
        # The same key, value, time and step as the run's point: the run's history keeps one.
        metrics.append(Metric(key, last.value, last.timestamp, last.step, model_id=model_id,
                              dataset_name=ds.name if ds else None,
                              dataset_digest=ds.digest if ds else None, run_id=run.info.run_id))
    if metrics:
        client.log_batch(run.info.run_id, metrics=metrics)


def _source_tags(run) -> dict:
    """The run's Source for the model's "Logged from" (e.g. a Prefect flow run's page), not the
    process that happens to register it."""
    return {k: v for k, v in run.data.tags.items()
            if k in ("mlflow.source.name", "mlflow.source.type", "mlflow.source.git.commit")}


def _ensure_registered_model(client, name: str) -> None:
    """Create the registered model with its description when it is missing, quietly
    (mlflow.register_model would announce that it "already exists" on every call)."""
    from mlflow.exceptions import MlflowException
    try:
        client.get_registered_model(name)
        return
    except MlflowException:
        pass
    try:
        client.create_registered_model(
            name, description="IMDB review sentiment: a frozen encoder with a BiGRU head. "
            "Input: a `text` column; output: `probability` (P(positive)) and `label`. "
            f"Load the approved model with mlflow.pyfunc.load_model('models:/{name}@{CHAMPION}').")
    except MlflowException:
        pass  # created concurrently


def _run_accuracy_checked(run, run_dir: Path) -> float:
    """The run's test accuracy metric, which the version's tag will carry; refused when the
    run has none or when `run_dir` holds another run's results."""
    from .training import METRICS
    acc = run.data.metrics.get("test_accuracy")
    if acc is None:
        raise ValueError(f"run {run.info.run_id} has no test_accuracy metric: only a run that "
                         "finished training and testing can be registered")
    local = run_dir / METRICS
    if local.exists():
        on_disk = float(json.loads(local.read_text())["test"]["accuracy"])
        if abs(on_disk - acc) > 1e-9:
            raise ValueError(f"{run_dir} holds another run's model: its {METRICS} says test "
                             f"accuracy {on_disk:.6f}, run {run.info.run_id} logged {acc:.6f}; "
                             "register each run from its own folder")
    return float(acc)


def version_tags(run, spec, acc: float) -> dict:
    """The version's tags, all taken from its run (the accuracy is the run's metric)."""
    tags = {"test_accuracy": repr(float(acc)), "run_id": run.info.run_id,
            "data_fingerprint": run.data.tags.get("data_fingerprint", ""),
            "encoder": spec.encoder, "max_length": str(spec.max_length),
            "truncation": spec.truncation}
    if run.data.tags.get(TEST_SET_RUN_TAG):
        tags[TEST_SET_TAG] = run.data.tags[TEST_SET_RUN_TAG]
    return tags


def _version_of_run(client, name: str, run_id: str):
    """The version an earlier attempt created from this run, if any (lowest number)."""
    found = [v for v in client.search_model_versions(f"name = '{name}' and run_id = '{run_id}'")
             if v.run_id == run_id]
    return min(found, key=lambda v: int(v.version)) if found else None


def _logged_model_of_run(client, run):
    """The model an earlier attempt logged to this run and finished uploading, if any."""
    try:
        models = client.search_logged_models(
            experiment_ids=[run.info.experiment_id],
            filter_string=f"source_run_id = '{run.info.run_id}' AND name = '{MODEL_NAME_IN_RUN}'")
    except Exception:
        return None
    ready = [m for m in models if str(getattr(m.status, "name", m.status)).upper().endswith("READY")]
    return max(ready, key=lambda m: m.creation_timestamp) if ready else None


def _log_model(mlflow, client, run, head_dir: Path, spec, fingerprint: str):
    signature, example = model_signature()
    with tempfile.TemporaryDirectory() as tmp:
        enc_dir = export_encoder(spec.encoder, spec.encoder_revision, Path(tmp) / "encoder")
        code_dir = export_code(Path(tmp) / "code")
        # log_model loads the model once to check the input example; that puts the temporary
        # code folder on sys.path, which must not outlive this call.
        saved_path = list(sys.path)
        try:
            with mlflow.start_run(run_id=run.info.run_id, log_system_metrics=False):
                info = mlflow.pyfunc.log_model(
                    name=MODEL_NAME_IN_RUN, python_model=str(PYFUNC_FILE),
                    artifacts={"head": str(head_dir), "encoder": str(enc_dir)},
                    code_paths=[str(code_dir)], signature=signature, input_example=example,
                    pip_requirements=pip_requirements(), step=_unused_step(client, run),
                    tags=_source_tags(run),
                    metadata={"encoder": spec.encoder, "max_length": spec.max_length,
                              "truncation": spec.truncation, "data_fingerprint": fingerprint})
        finally:
            sys.path[:] = saved_path
    _link_model_metrics(client, run, info.model_id)
    return info.model_id, info.model_uri


def _describe(spec, acc: float, fingerprint: str, run_id: str) -> str:
    return (f"Encoder `{spec.encoder}`, max_length {spec.max_length} ({spec.truncation}), test "
            f"accuracy {acc:.4f}, data fingerprint `{fingerprint}`, from run `{run_id}`.")


def _finish_version(client, name: str, mv, tags: dict, description: str,
                    model_id: str | None) -> None:
    """Tags, description and the logged model's link to the version: what creating the
    version leaves to do. Idempotent, so a retry after a failure here completes the version."""
    from mlflow.utils.mlflow_tags import MLFLOW_MODEL_VERSIONS
    have = mv.tags or {}
    for key, value in tags.items():
        if have.get(key) != value:
            client.set_model_version_tag(name, str(mv.version), key, value)
    if mv.description != description:
        client.update_model_version(name, str(mv.version), description=description)
    if model_id:
        # What mlflow.register_model records too: the logged model's page lists its versions.
        client.set_logged_model_tags(model_id, {MLFLOW_MODEL_VERSIONS: json.dumps(
            [{"name": name, "version": str(mv.version)}])})


def _check_tags(client, name: str, version: str, acc: float) -> None:
    """The stored tag is the run's metric, read back from the registry."""
    stored = (client.get_model_version(name, version).tags or {}).get("test_accuracy", "")
    try:
        ok = abs(float(stored) - acc) <= 1e-12
    except ValueError:
        ok = False
    if not ok:
        raise RuntimeError(f"version {version} of {name!r} carries test_accuracy {stored!r} "
                           f"but its run logged {acc!r}")


def register_model(run_id: str, run_dir: str, cfg) -> dict:
    """Log the pyfunc model to run `run_id` and register it as a version of cfg.model_name,
    tagged with the run's test accuracy, test set, preprocessing, data fingerprint and run id.

    Idempotent: when the run already has a version (an earlier attempt failed after creating
    it), that version is completed and returned; no second one is created."""
    from .model_folder import HEAD_CONFIG, MODEL_DIR
    apply_env_defaults(cfg)
    uri = tracking_uri(cfg)
    mlflow, client = connect(uri)
    name = cfg.model_name
    run_dir = run_dir_of(run_id, run_dir)  # the run's own folder, or a clear error
    head_dir = run_dir / MODEL_DIR
    if not (head_dir / HEAD_CONFIG).exists():
        raise FileNotFoundError(f"{head_dir}: no trained model to register")
    spec = preprocessing.load(head_dir)
    run = client.get_run(run_id)
    acc = _run_accuracy_checked(run, Path(run_dir))
    fingerprint = run.data.tags.get("data_fingerprint", "")
    tags = version_tags(run, spec, acc)
    description = _describe(spec, acc, fingerprint, run_id)
    _ensure_registered_model(client, name)
    mv = _version_of_run(client, name, run_id)
    if mv is not None:
        model_id = getattr(mv, "model_id", None)
        logged_uri = f"models:/{model_id}" if model_id else mv.source
    else:
        existing = _logged_model_of_run(client, run)
        if existing is not None:
            model_id, logged_uri = existing.model_id, f"models:/{existing.model_id}"
        else:
            model_id, logged_uri = _log_model(mlflow, client, run, head_dir, spec, fingerprint)
        mv = client.create_model_version(name, source=logged_uri, run_id=run_id,
                                         model_id=model_id, tags=tags, description=description)
    _finish_version(client, name, mv, tags, description, model_id)
    _check_tags(client, name, str(mv.version), acc)
    return {"name": name, "version": int(mv.version), "model_uri": f"models:/{name}/{mv.version}",
            "test_accuracy": acc, "run_id": run_id, "logged_model_uri": logged_uri,
            "test_set": tags.get(TEST_SET_TAG)}


def _version_accuracy(client, mv) -> float | None:
    raw = (mv.tags or {}).get("test_accuracy")
    if raw:
        try:
            return float(raw)
        except ValueError:
            pass
    return run_accuracy(client, mv.run_id) if mv.run_id else None


def _champion(client, name: str):
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
    from .config import Config
    run = client.get_run(cand.run_id)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            local = client.download_artifacts(cand.run_id, "config.json", tmp)
            trained = Config.from_dict(json.loads(Path(local).read_text()))
        except Exception:
            trained = cfg
    source = run.data.tags.get("data.source")
    if source and Path(source).exists():
        trained = trained.replace(data=source)
    return trained, run


def _score_champion(client, store: str, name: str, champ, cand, cfg) -> float:
    """The champion's accuracy on the candidate's test split."""
    from .data import load_splits
    from .metrics import classification_metrics
    from .model_uri import load_model_uri
    try:
        cand_cfg, run = _candidate_config(client, cand, cfg)
        splits = load_splits(cand_cfg)
    except Exception as e:
        raise _Incomparable(f"the candidate's test split cannot be loaded ({e})") from e
    fingerprint = run.data.tags.get("data_fingerprint")
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
    champ_set, cand_set = (champ.tags or {}).get(TEST_SET_TAG), (cand.tags or {}).get(TEST_SET_TAG)
    if champ_set and champ_set == cand_set:
        return {"version": int(champ.version), "accuracy": _version_accuracy(client, champ),
                "rescored": False, "note": ""}
    why = (f"tested on test set {champ_set or 'unknown'}, the candidate on "
           f"{cand_set or 'unknown'}")
    acc = _score_champion(client, store, name, champ, cand, cfg)
    return {"version": int(champ.version), "accuracy": acc, "rescored": True,
            "note": f"{why}; re-scored on the candidate's test set"}


def _gate(client, store: str, cfg, cand, cand_acc, champ, baseline: dict | None):
    """(promoted, reason, side-by-side comparison) for the candidate against `champ`."""
    from . import promotion
    cand_v, cand_set = int(cand.version), (cand.tags or {}).get(TEST_SET_TAG)
    base = None
    if baseline is not None:
        base = {"accuracy": baseline.get("accuracy"), "run_id": baseline.get("run_id"),
                "version": baseline.get("version"), "test_set": baseline.get("test_set")}
        if not cand_set or base["test_set"] != cand_set:
            reason = (f"the baseline was tested on test set {base['test_set'] or 'unknown'}, the "
                      f"candidate on {cand_set or 'unknown'}: no like-for-like comparison")
            return False, reason, promotion.side_by_side(cand_set, cand_acc, None, base)
    if champ is not None and int(champ.version) == cand_v:
        compared = promotion.side_by_side(cand_set, cand_acc, None, base)
        return False, f"version {cand_v} already holds the alias {CHAMPION!r}", compared
    champion = None
    if champ is not None:
        try:
            champion = _champion_on_test_set(client, store, cfg.model_name, champ, cand, cfg)
        except _Incomparable as e:
            reason = (f"cannot compare with the {CHAMPION} (version {champ.version}): it was "
                      f"tested on another test set and re-scoring it failed: {e}")
            return False, reason, promotion.side_by_side(cand_set, cand_acc, None, base)
    promoted, reason = promotion.decide(
        cand_acc, champion["accuracy"] if champion else None, cfg.min_accuracy,
        cfg.min_improvement, base["accuracy"] if base else None, cfg.min_lift_over_baseline)
    if promoted and champion and champion["rescored"]:
        reason += " (the champion re-scored on the candidate's test set)"
    return promoted, reason, promotion.side_by_side(cand_set, cand_acc, champion, base)


def _next_audit_index(tags: dict) -> int:
    seen = [int(k.split(".")[1]) for k in tags
            if k.startswith(AUDIT_PREFIX) and k.count(".") == 2 and k.split(".")[1].isdigit()]
    return max(seen, default=0) + 1


def _record(client, name: str, cand, record: dict, markdown: str) -> int:
    """The decision as the version's next numbered audit record and as its latest tags; the
    markdown appended to the run's artifacts. Returns the record's number."""
    fresh = client.get_model_version(name, str(cand.version))
    n = _next_audit_index(fresh.tags or {})
    for key, value in record.items():
        client.set_model_version_tag(name, str(cand.version), f"{AUDIT_PREFIX}{n}.{key}", value)
    latest = {"promotion_decision": record["decision"], "promotion_reason": record["reason"],
              "promotion_compared_to": record["champion"], "promotion_gate": record["gate"],
              "promotion_time": record["time"], "promotion_count": str(n)}
    for key, value in latest.items():
        client.set_model_version_tag(name, str(cand.version), key, value)
    if cand.run_id:
        try:
            client.log_text(cand.run_id, markdown, f"promotion/decision-{n}.md")
        except Exception as e:  # the tags are the record; the artifact is for reading
            log.warning("could not log the promotion decision to run %s: %s", cand.run_id, e)
    return n


def _fmt_opt(x) -> str:
    return "" if x is None else repr(float(x))


def promote(cfg, version: int | None = None, baseline: dict | None = None) -> dict:
    """Move alias `champion` to `version` (default: the newest) if it passes the gate of
    ``promotion.decide`` on one test set: `min_accuracy`, a lift over `baseline` (a dict
    {accuracy, test_set, run_id, version} of the bag-of-words run on the same data, or None),
    and a gain over the champion (re-scored on the candidate's test set when it was tested on
    another). One promoter at a time per model; the decision is recorded on the version."""
    from mlflow.exceptions import MlflowException
    from . import promotion
    from .promotion_lock import promotion_lock
    apply_env_defaults(cfg)
    uri = tracking_uri(cfg)
    _, client = connect(uri)
    name = cfg.model_name
    versions = client.search_model_versions(f"name = '{name}'")
    if not versions:
        raise ValueError(f"registered model {name!r} has no versions in {uri}")
    cand_v = int(version) if version is not None else max(int(v.version) for v in versions)
    try:
        cand = client.get_model_version(name, str(cand_v))
    except MlflowException as e:
        raise ValueError(f"registered model {name!r} has no version {cand_v}") from e
    cand_acc = _version_accuracy(client, cand)
    candidate = {"version": cand_v, "accuracy": cand_acc}
    gate = (f"min_accuracy={cfg.min_accuracy}, min_improvement={cfg.min_improvement}, "
            f"min_lift_over_baseline={cfg.min_lift_over_baseline}")
    with promotion_lock(client, uri, name, cfg.promotion_lock_timeout_s):
        notes = []
        for _ in range(MAX_REDECIDE):
            champ = _champion(client, name)
            promoted, reason, compared = _gate(client, uri, cfg, cand, cand_acc, champ, baseline)
            # Compare-and-set: act only if the champion is still the one just compared with.
            now = _champion(client, name)
            if _version_or_none(now) != _version_or_none(champ):
                notes.append(f"the {CHAMPION} moved to version {_version_or_none(now)} while "
                             "deciding; decided again")
                continue
            if not promoted:
                break
            client.set_registered_model_alias(name, CHAMPION, str(cand_v))
            after = _champion(client, name)
            if _version_or_none(after) == cand_v:
                break
            notes.append(f"another promoter moved the {CHAMPION} to version "
                         f"{_version_or_none(after)}; decided again against it")
        else:
            promoted = _version_or_none(_champion(client, name)) == cand_v
            reason = (f"the {CHAMPION} kept moving while deciding ({MAX_REDECIDE} attempts); "
                      f"version {cand_v} {'holds' if promoted else 'does not hold'} it")
        if notes:
            reason = f"{reason} ({'; '.join(notes)})"
        before = None
        if champ is not None:
            before = {"version": int(champ.version), "accuracy": _version_accuracy(client, champ)}
        after_v = candidate if promoted else before
        md = promotion.markdown_report(name, promoted, reason, candidate, before, after_v,
                                       cfg.min_accuracy, cfg.min_improvement, compared,
                                       cfg.min_lift_over_baseline)
        champion_cmp, base_cmp = compared.get("champion"), compared.get("baseline")
        record = {"decision": "promoted" if promoted else "rejected", "reason": reason,
                  "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "gate": gate,
                  "by": f"{socket.gethostname()} pid {os.getpid()}",
                  "candidate_accuracy": _fmt_opt(cand_acc),
                  "test_set": compared.get("test_set") or "",
                  "champion": str(before["version"]) if before else "none",
                  "champion_accuracy": _fmt_opt(champion_cmp and champion_cmp.get("accuracy")),
                  "champion_rescored": str(bool(champion_cmp and champion_cmp.get("rescored"))).lower(),
                  "baseline_accuracy": _fmt_opt(base_cmp and base_cmp.get("accuracy")),
                  "baseline_run_id": (base_cmp or {}).get("run_id") or "",
                  "lift_over_baseline": _fmt_opt(compared.get("lift_over_baseline"))}
        n = _record(client, name, cand, record, md)
    return {"promoted": promoted, "reason": reason, "model_name": name, "candidate": candidate,
            "champion_before": before, "champion_after": after_v, "compared": compared,
            "audit_record": n, "markdown": md}


def _version_or_none(mv) -> int | None:
    return None if mv is None else int(mv.version)
