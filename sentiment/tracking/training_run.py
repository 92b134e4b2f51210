"""A training run under MLflow, and the evaluation artifacts logged to it afterwards.

Prefect tasks call these functions with run ids, paths and small dicts only.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import tempfile
import time
import warnings
from pathlib import Path

from sentiment.tracking import provenance
from sentiment.training import run_folder
from sentiment.tracking.store import connect, ensure_experiment, tracking_uri
from sentiment.common.files import atomic_write_text

log = logging.getLogger(__name__)

RUN_REF = "mlflow_run.json"         # in run_dir: the MLflow run that owns the folder
TEST_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss")
# MLflow's run context tags; a run started by an orchestrator points its Source at the
# orchestrator's run page instead of the Python file that happened to call start_run.
SOURCE_NAME, SOURCE_TYPE = "mlflow.source.name", "mlflow.source.type"
DESCRIPTION = "mlflow.note.content"
FLOW_RUN_URL = "prefect.flow_run_url"


def system_metrics_enabled() -> bool:
    """On when psutil is there, unless MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING says otherwise."""
    import importlib.util
    env = os.environ.get("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING")
    if env is not None:
        return env.strip().lower() in ("1", "true", "yes", "on")
    return importlib.util.find_spec("psutil") is not None


def describe(cfg, dinfo: dict) -> str:
    """The run's one-line description: what was trained on what."""
    n = dinfo["split_sizes"]
    return (f"{cfg.preset} preset: encoder {cfg.encoder} (max_length {cfg.max_length}, "
            f"{cfg.truncation} truncation), {n.get('train', 0)} train / {n.get('valid', 0)} "
            f"validation / {n.get('test', 0)} test reviews from {dinfo['source']}")


def run_tags(cfg, dinfo: dict, einfo: dict, git: dict, extra: dict | None) -> dict:
    """Every tag a run gets: provenance, description, then the caller's tags (they win)."""
    tags = {DESCRIPTION: describe(cfg, dinfo), "data_fingerprint": dinfo["fingerprint"],
            "data.source": dinfo["source"], "encoder.name": einfo["name"],
            "encoder.revision": einfo["revision"], "encoder.location": einfo["location"],
            "preset": cfg.preset, "run_dir": str(Path(cfg.run_dir).resolve()),
            **{f"pkg.{k}": v for k, v in provenance.package_versions().items()}}
    if git:
        tags.update({"mlflow.source.git.commit": git["commit"],
                     **{f"git.{k}": v for k, v in git.items()}})
    extra = {k: str(v) for k, v in (extra or {}).items() if v is not None}
    if extra.get(FLOW_RUN_URL):
        tags.update({SOURCE_NAME: extra[FLOW_RUN_URL], SOURCE_TYPE: "JOB"})
    return {**tags, **extra}


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


class RunDirMismatch(ValueError):
    """A run folder does not belong to the MLflow run it was given with."""


def run_dir_of(run_id: str, run_dir: str | Path) -> Path:
    """`run_dir`, checked to be the folder MLflow run `run_id` trained in (its mlflow_run.json
    names that run): what registration and evaluation read must be that run's own files,
    never those of another run that wrote the same folder later. One-line error otherwise."""
    run_dir = Path(run_dir)
    ref = run_dir / RUN_REF
    try:
        saved = json.loads(ref.read_text()).get("run_id")
    except FileNotFoundError:
        raise RunDirMismatch(f"{run_dir} is not the folder of MLflow run {run_id}: it has no "
                             f"{RUN_REF}") from None
    except (OSError, ValueError, AttributeError) as e:
        raise RunDirMismatch(f"{ref} is unreadable ({' '.join(str(e).split())})") from None
    if saved != run_id:
        raise RunDirMismatch(f"{run_dir} now holds MLflow run {saved}, not run {run_id}: another "
                             "run trained in the same folder; register from that run's own "
                             "folder (its run_dir tag)")
    return run_dir


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


def _last_steps(client, run_id: str) -> dict:
    """Each metric's last logged step in run `run_id`: a resumed training repeats the steps
    after its checkpoint, which the run already holds up to the interruption."""
    run = client.get_run(run_id)
    return {key: max((m.step for m in client.get_metric_history(run_id, key)), default=-1)
            for key in run.data.metrics}


class _Hooks:
    """Training callbacks that log to the active run. A failed write (a flaky server) costs
    that data point, not the training. Points at or below a metric's `last_steps` entry are
    already in the run (a resumed training) and are skipped."""

    def __init__(self, mlflow, last_steps: dict | None = None):
        self.mlflow = mlflow
        self.warned = False
        self.last_steps = last_steps or {}

    def _log(self, metrics: dict, step: int) -> None:
        metrics = {k: v for k, v in metrics.items() if step > self.last_steps.get(k, -1)}
        if not metrics:
            return
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


def train_tracked(cfg, validation_report_dir: str | None = None,
                  tags: dict[str, str] | None = None) -> dict:
    """Train under an MLflow run: config, data, encoder, packages, git commit, per-step and
    per-epoch curves, system metrics, test metrics and the validation report.

    The run gets a one-line description (preset, encoder, data sizes and source) and `tags`
    on top of its own. An orchestrator links its run with them; the training flow passes
    ``prefect.flow_run_id``, ``prefect.flow_run_url`` (the flow run's page in the Prefect UI)
    and ``prefect.deployment`` (the deployment's name, when the flow runs from one). Given
    ``prefect.flow_run_url``, the run's Source (``mlflow.source.name``, type ``JOB``) is that
    page rather than the file that started the process.

    The run folder is this run's own (see ``run_folder.owned``: a new one when `cfg.run_dir`
    is the preset's); it is recorded as the run's ``run_dir`` tag and in ``mlflow_run.json``
    there. With `cfg.resume` the MLflow run of the interrupted training continues: metric
    points it already holds are not logged again. An interrupted attempt (Ctrl-C, a stop)
    ends its run KILLED, any other error FAILED, a killed process leaves it RUNNING; either
    way the resumed training reopens that run and ends it FINISHED.
    """
    with run_folder.owned(cfg) as cfg:
        return _train_tracked(cfg, validation_report_dir, tags)


def _train_tracked(cfg, validation_report_dir, tags) -> dict:
    from sentiment.data import imdb
    from sentiment.training.loop import METRICS, TrainHooks, train
    uri = tracking_uri(cfg)
    mlflow, client = connect(uri)
    exp_id = ensure_experiment(client, cfg.experiment, uri)
    # Load the splits here so the run knows its data before training starts; train() reuses them.
    splits = imdb.load_splits(cfg)
    dinfo = provenance.data_info(cfg, splits)
    einfo = provenance.encoder_info(cfg.encoder, cfg.encoder_revision)
    git = provenance.git_info()
    resume_id = _resumable_run(cfg, client, uri)
    run_name = f"{cfg.preset}-{cfg.encoder.rsplit('/', 1)[-1]}-{time.strftime('%Y%m%d-%H%M%S')}"
    hooks = _Hooks(mlflow, _last_steps(client, resume_id) if resume_id else None)
    run = mlflow.start_run(run_id=resume_id, experiment_id=None if resume_id else exp_id,
                           run_name=None if resume_id else run_name,
                           log_system_metrics=system_metrics_enabled())
    try:
        run_id = run.info.run_id
        atomic_write_text(Path(cfg.run_dir) / RUN_REF, json.dumps(
            {"run_id": run_id, "tracking_uri": uri, "experiment_id": exp_id}))
        if resume_id:
            mlflow.set_tag("resumed", "true")
        else:  # params are immutable: a resumed run keeps the ones it started with
            mlflow.log_params(_params(cfg))
            mlflow.log_params({"data.fingerprint": dinfo["fingerprint"],
                               **{f"data.{k}_rows": v for k, v in dinfo["split_sizes"].items()},
                               **{f"data.sha256.{k}": v["sha256"][:16]
                                  for k, v in list(dinfo.get("files", {}).items())[:20]}})
        mlflow.set_tags(run_tags(cfg, dinfo, einfo, git, tags))
        mlflow.set_tag("data.test_set", splits.test_fingerprint)  # the gate compares runs by it
        mlflow.log_dict(dinfo, "data/fingerprint.json")
        mlflow.log_dict({"packages": provenance.package_versions(), "encoder": einfo, "git": git,
                         "platform": platform.platform()}, "environment.json")
        mlflow.log_dict(cfg.to_dict(), "config.json")
        _log_datasets(mlflow, splits, dinfo["source"])

        summary = train(cfg, splits=splits,
                        hooks=TrainHooks(on_step=hooks.on_step, on_epoch=hooks.on_epoch))

        t = summary["test"]
        final = {**{f"test_{k}": t[k] for k in TEST_METRICS if k in t},
                 "test_loss": summary["test_loss"], "best_epoch": summary["best_epoch"],
                 "best_val_loss": summary["best_val_loss"],
                 **{f"time/{k}": v for k, v in summary["timings"].items()}}
        # An attempt killed after logging these has them already (at step 0).
        mlflow.log_metrics({k: v for k, v in final.items() if k not in hooks.last_steps})
        mlflow.log_params({"parameters.total": summary["parameters"]["total"],
                           "parameters.trainable": summary["parameters"]["trainable"],
                           "device.resolved": summary["device"],
                           "encoder_precision.resolved": summary["encoder_precision"]})
        mlflow.log_artifact(str(Path(cfg.run_dir) / METRICS))
        if validation_report_dir:
            _log_validation_report(mlflow, validation_report_dir)
    except BaseException as e:
        # KILLED: interrupted, --resume continues this run; FAILED: an error to look at.
        interrupted = isinstance(e, (KeyboardInterrupt, SystemExit))
        _end_run(mlflow, "KILLED" if interrupted else "FAILED")
        raise
    _end_run(mlflow, "FINISHED")
    return {"run_id": run_id, "experiment_id": exp_id, "tracking_uri": uri,
            "run_dir": summary["run_dir"], "test_accuracy": t["accuracy"], "test_f1": t["f1"],
            "best_epoch": summary["best_epoch"], "data_fingerprint": dinfo["fingerprint"],
            "split_sizes": dinfo["split_sizes"],
            "timings": {k: round(v, 2) for k, v in summary["timings"].items()}}


def _end_run(mlflow, status: str) -> None:
    try:
        mlflow.end_run(status)
    except Exception as e:  # the store went away: the run stays RUNNING, --resume reopens it
        log.warning("could not mark the MLflow run %s: %s", status, e)


def _log_validation_report(mlflow, path: str) -> None:
    p = Path(path)
    if p.is_dir():
        mlflow.log_artifacts(str(p), "validation")
    elif p.is_file():
        mlflow.log_artifact(str(p), "validation")
    else:
        log.warning("validation report %s does not exist; not logged", p)


def example_predictions(run_dir: str | Path, cfg, texts: list[str] | None = None) -> list[dict]:
    from sentiment.model.predict import EXAMPLES, SentimentModel
    model = SentimentModel.load(run_dir, device=cfg.device, batch_size=cfg.eval_batch_size)
    texts = list(texts or EXAMPLES)
    return [{"text": t, **p} for t, p in zip(texts, model.predict(texts))]


def log_evaluation(run_id: str, run_dir: str, cfg) -> dict:
    """Metrics, plots, the confidently wrong reviews, example predictions and the model card,
    from run_dir's test predictions, logged to run `run_id`. Returns the test metrics."""
    import pandas as pd
    from mlflow.entities import Metric
    from sentiment.evaluation import report as reporting
    from sentiment.evaluation.metrics import classification_metrics
    from sentiment.training.loop import METRICS, TEST_PREDICTIONS
    uri = tracking_uri(cfg)
    mlflow, client = connect(uri)
    run_dir = run_dir_of(run_id, run_dir)
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
