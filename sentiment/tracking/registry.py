"""The model registry: a trained run exported as a pyfunc model and registered as a version
(promotion, which moves the `champion` alias, is ``sentiment.tracking.promotion``).

The model is logged as code (`pyfunc_model.py`) with plain-file artifacts: nothing pickled.

Registration is idempotent: a retry finds the version its run already created (by run id) and
completes it instead of creating another; the version's tags are the run's own metrics, checked,
and the SHA-256 of each of its files as stored (``checksums``), which a rollback verifies.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from pathlib import Path

from sentiment.blend.fit import PARTS
from sentiment.common.checksums import check_folder, seal_folder
from sentiment.encoding import preprocessing
from sentiment.tracking import checksums
from sentiment.tracking.data_profile import profile_training_run
from sentiment.tracking.logged_model import (
    ensure_registered_model,
    link_version,
    log_pyfunc,
    pip_requirements,
)
from sentiment.tracking.names import (
    DATA_FINGERPRINT,
    DESCRIPTION_SEPARATOR,
    ENCODER_ARTIFACT,
    HEAD_ARTIFACT,
    MODEL_NAME_IN_RUN,
    PART_ACCURACY,
    RUN_TEST_SET,
    VERSION_ACCURACY,
    VERSION_RUN_ID,
    VERSION_TEST_SET,
    format_accuracy,
)
from sentiment.tracking.run_ref import run_dir_of
from sentiment.tracking.store import connect, tracking_uri
from sentiment.training.outputs import METRICS

log = logging.getLogger(__name__)

# The encoder files a pyfunc model needs; READMEs carry the encoder's license and attribution.
ENCODER_FILES = ("config.json", "model.safetensors", "model.safetensors.index.json",
                 "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                 "vocab.txt", "vocab.json", "merges.txt", "added_tokens.json", "spiece.model",
                 "sentencepiece.bpe.model", "README.md")
# Run metrics that describe the logged model, and the split (dataset context) each was
# measured on: the model's page lists them and, through them, the datasets used.
MODEL_METRICS = {"test_": "test", "best_val_loss": "validation"}


def export_encoder(name: str, revision: str | None, dest: Path) -> Path:
    """The encoder and tokenizer as plain files in dest. Local folders are copied file by file
    (safetensors weights only); random-init and Hub encoders are saved with save_pretrained,
    which writes safetensors."""
    from sentiment.encoding import encoders
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


def _run_accuracy_checked(run, run_dir: Path) -> float:
    """The run's test accuracy metric, which the version's tag will carry; refused when the
    run has none or when `run_dir` holds another run's results."""
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


def version_tags(run, acc: float) -> dict:
    """The version's tags, all taken from its run (the accuracy is the run's metric)."""
    # The preprocessing (encoder, max_length, truncation) is in the description and the
    # logged model's metadata; tags hold what the gate and readers filter on.
    tags = {VERSION_ACCURACY: format_accuracy(acc), VERSION_RUN_ID: run.info.run_id,
            DATA_FINGERPRINT: run.data.tags.get(DATA_FINGERPRINT, "")}
    if run.data.tags.get(RUN_TEST_SET):
        tags[VERSION_TEST_SET] = run.data.tags[RUN_TEST_SET]
    for part in PARTS:  # a blended model: each part alone, for the gate's table
        value = run.data.metrics.get(PART_ACCURACY.format(part=part))
        if value is not None:
            tags[PART_ACCURACY.format(part=part)] = format_accuracy(value)
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
    # The model is registered only as it was written (its checksums.json is logged with it);
    # the exported encoder gets its own record, which loading checks.
    check_folder(head_dir)
    with tempfile.TemporaryDirectory() as tmp:
        enc_dir = export_encoder(spec.encoder, spec.encoder_revision, Path(tmp) / ENCODER_ARTIFACT)
        seal_folder(enc_dir)
        info = log_pyfunc(mlflow, run.info.run_id,
                          {HEAD_ARTIFACT: str(head_dir), ENCODER_ARTIFACT: str(enc_dir)},
                          pip_requirements(), step=_unused_step(client, run),
                          tags=_source_tags(run),
                          metadata={"encoder": spec.encoder, "max_length": spec.max_length,
                                    "truncation": spec.truncation,
                                    DATA_FINGERPRINT: fingerprint})
    _link_model_metrics(client, run, info.model_id)
    return info.model_id, info.model_uri


def _describe(spec, acc: float, fingerprint: str, run_id: str, tags: dict) -> str:
    parts = [f"{p.replace('_', '-')} alone {float(tags[PART_ACCURACY.format(part=p)]):.4f}"
             for p in PARTS if PART_ACCURACY.format(part=p) in tags]
    what = (f"Encoder `{spec.encoder}`" + (" blended with the bag-of-words model" if parts else "")
            + f", max_length {spec.max_length} ({spec.truncation}), test accuracy {acc:.4f}")
    if parts:
        what += f" ({', '.join(parts)})"
    return f"{what}, data fingerprint `{fingerprint}`, from run `{run_id}`."


def _finish_version(client, name: str, mv, tags: dict, description: str,
                    model_id: str | None) -> None:
    """Tags, description and the logged model's link to the version: what creating the
    version leaves to do. Idempotent, so a retry after a failure here completes the version."""
    have = mv.tags or {}
    for key, value in tags.items():
        if have.get(key) != value:
            client.set_model_version_tag(name, str(mv.version), key, value)
    # A gate decision above the separator stays; the registration's part is made whole.
    decided, sep, registered = (mv.description or "").rpartition(DESCRIPTION_SEPARATOR)
    if registered != description:
        client.update_model_version(name, str(mv.version),
                                    description=decided + sep + description)
    if model_id:
        link_version(client, model_id, name, mv.version)


def _check_tags(client, name: str, version: str, acc: float) -> None:
    """The stored tag is the run's metric, read back from the registry."""
    stored = (client.get_model_version(name, version).tags or {}).get(VERSION_ACCURACY, "")
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
    from sentiment.model.model_folder import HEAD_CONFIG, MODEL_DIR
    uri = tracking_uri(cfg)
    mlflow, client = connect(uri, cfg)
    name = cfg.model_name
    run_dir = run_dir_of(run_id, run_dir)  # the run's own folder, or a clear error
    head_dir = run_dir / MODEL_DIR
    if not (head_dir / HEAD_CONFIG).exists():
        raise FileNotFoundError(f"{head_dir}: no trained model to register")
    spec = preprocessing.load(head_dir)
    run = client.get_run(run_id)
    acc = _run_accuracy_checked(run, Path(run_dir))
    fingerprint = run.data.tags.get(DATA_FINGERPRINT, "")
    tags = version_tags(run, acc)
    description = _describe(spec, acc, fingerprint, run_id, tags)
    ensure_registered_model(client, name)
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
    # What a rollback checks before moving the alias back to this version.
    checksums.record_checksums(client, name, mv.version, uri)
    # What scoring compares incoming reviews with (drift); on the run, so a retry skips it.
    # A version without one still scores (its drift report says "not checked"): a data source
    # that is gone since training must not undo a registration that succeeded.
    try:
        profile_training_run(client, run_id, Path(run_dir), cfg, spec)
    except Exception as e:
        log.warning("version %s of %s has no training-data profile (drift is not checked when "
                    "it scores): %s: %s", mv.version, name, type(e).__name__, e)
    return {"name": name, "version": int(mv.version), "model_uri": f"models:/{name}/{mv.version}",
            "test_accuracy": acc, "run_id": run_id, "logged_model_uri": logged_uri,
            "test_set": tags.get(VERSION_TEST_SET)}
