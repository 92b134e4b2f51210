"""The model registry: a trained run exported as a pyfunc model, registered as a version, and
the promotion gate that moves the `champion` alias.

The model is logged as code (`pyfunc_model.py`) with plain-file artifacts: nothing pickled.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from . import preprocessing
from .mlflow_store import connect, tracking_uri
from .promotion import CHAMPION
from .provenance import RUNTIME_PACKAGES, package_version

MODEL_NAME_IN_RUN = "model"         # the logged model's name inside its run
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
    """text -> probability, label, with a `threshold` parameter; and the input example."""
    import pandas as pd
    from mlflow.models import infer_signature
    from .predict import EXAMPLES
    example = pd.DataFrame({"text": EXAMPLES})
    output = pd.DataFrame({"probability": [0.1, 0.9], "label": ["neg", "pos"]})
    return infer_signature(example, output, params={"threshold": 0.5}), example


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


def register_model(run_id: str, run_dir: str, cfg) -> dict:
    """Log the pyfunc model to run `run_id` and register it as a new version of
    cfg.model_name, tagged with its test accuracy, preprocessing, data fingerprint and run id."""
    from mlflow.utils.mlflow_tags import MLFLOW_MODEL_VERSIONS
    from .model_folder import HEAD_CONFIG, MODEL_DIR
    uri = tracking_uri(cfg)
    mlflow, client = connect(uri)
    run_dir = Path(run_dir)
    head_dir = run_dir / MODEL_DIR
    if not (head_dir / HEAD_CONFIG).exists():
        raise FileNotFoundError(f"{head_dir}: no trained model to register")
    spec = preprocessing.load(head_dir)
    run = client.get_run(run_id)
    fingerprint = run.data.tags.get("data_fingerprint", "")
    acc = run_accuracy(client, run_id, run_dir)
    signature, example = model_signature()
    with tempfile.TemporaryDirectory() as tmp:
        enc_dir = export_encoder(spec.encoder, spec.encoder_revision, Path(tmp) / "encoder")
        code_dir = export_code(Path(tmp) / "code")
        # log_model loads the model once to check the input example; that puts the temporary
        # code folder on sys.path, which must not outlive this call.
        saved_path = list(sys.path)
        try:
            with mlflow.start_run(run_id=run_id, log_system_metrics=False):
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
    name = cfg.model_name
    _ensure_registered_model(client, name)
    acc_txt = f"{acc:.4f}" if acc is not None else "n/a"
    mv = client.create_model_version(
        name, source=info.model_uri, run_id=run_id, model_id=info.model_id,
        tags={"test_accuracy": f"{acc:.6f}" if acc is not None else "",
              "data_fingerprint": fingerprint, "run_id": run_id, "encoder": spec.encoder,
              "max_length": str(spec.max_length), "truncation": spec.truncation},
        description=f"Encoder `{spec.encoder}`, max_length {spec.max_length} "
                    f"({spec.truncation}), test accuracy {acc_txt}, data fingerprint "
                    f"`{fingerprint}`, from run `{run_id}`.")
    # What mlflow.register_model records too: the logged model's page lists its versions.
    client.set_logged_model_tags(info.model_id, {MLFLOW_MODEL_VERSIONS: json.dumps(
        [{"name": name, "version": str(mv.version)}])})
    return {"name": name, "version": int(mv.version), "model_uri": f"models:/{name}/{mv.version}",
            "test_accuracy": acc, "run_id": run_id, "logged_model_uri": info.model_uri}


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


def promote(cfg, version: int | None = None, baseline: dict | None = None) -> dict:
    """Move alias `champion` to `version` (default: the newest) if it passes the gate of
    ``promotion.decide``; record the decision as tags on that version.

    `baseline`: ``baseline_run.train_baseline``'s result for the candidate's data (accepted
    here; the gate does not compare with it yet)."""
    from mlflow.exceptions import MlflowException
    from . import promotion
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
    champ = _champion(client, name)
    before = None
    if champ is not None:
        before = {"version": int(champ.version), "accuracy": _version_accuracy(client, champ)}
    if before and before["version"] == cand_v:
        promoted, reason = False, f"version {cand_v} already holds the alias {CHAMPION!r}"
    else:
        promoted, reason = promotion.decide(cand_acc, before["accuracy"] if before else None,
                                            cfg.min_accuracy, cfg.min_improvement)
    if promoted:
        client.set_registered_model_alias(name, CHAMPION, str(cand_v))
    candidate = {"version": cand_v, "accuracy": cand_acc}
    after = candidate if promoted else before
    for key, value in {"promotion_decision": "promoted" if promoted else "rejected",
                       "promotion_reason": reason,
                       "promotion_compared_to": str(before["version"]) if before else "none",
                       "promotion_gate": f"min_accuracy={cfg.min_accuracy}, "
                                         f"min_improvement={cfg.min_improvement}",
                       "promotion_time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}.items():
        client.set_model_version_tag(name, str(cand_v), key, value)
    md = promotion.markdown_report(name, promoted, reason, candidate, before, after,
                                   cfg.min_accuracy, cfg.min_improvement)
    return {"promoted": promoted, "reason": reason, "model_name": name, "candidate": candidate,
            "champion_before": before, "champion_after": after, "markdown": md}
