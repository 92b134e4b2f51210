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

from sentiment.common.files import atomic_write_text
from sentiment.tracking import provenance
from sentiment.tracking.metric_log import JOURNAL, MetricLog, present_points
from sentiment.tracking.names import (
    CONFIG_ARTIFACT,
    DATA_FINGERPRINT,
    DATA_SOURCE,
    DESCRIPTION,
    LIFT_OVER_BASELINE,
    RUN_TEST_SET,
    SLICE_METRIC,
    SLICE_TABLE,
    TEST_METRICS,
)
from sentiment.tracking.run_end import end_run, status_for
from sentiment.tracking.run_ref import RUN_REF, run_dir_of
from sentiment.tracking.run_tags import run_tags
from sentiment.tracking.store import (
    StoreUnavailable,
    connect,
    ensure_experiment,
    probe,
    tracking_uri,
)
from sentiment.training import distributed

log = logging.getLogger(__name__)



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


def training_tags(cfg, dinfo: dict, einfo: dict, extra: dict | None,
                  environment: dict | None = None) -> dict:
    """Every tag a training run gets: the shared ones (``run_tags``), then data and encoder."""
    own = {DATA_FINGERPRINT: dinfo["fingerprint"], DATA_SOURCE: dinfo["source"],
           "encoder.name": einfo["name"], "encoder.revision": einfo["revision"],
           "encoder.location": einfo["location"], "preset": cfg.preset,
           "run_dir": str(Path(cfg.run_dir).resolve())}
    return run_tags(describe(cfg, dinfo), own, extra, environment=environment)


# Config fields that say where and how a run ran, not what was trained: config.json keeps them,
# the params (what the UI's run comparison plots and tabulates) do not.
NOT_PARAMS = ("run_dir", "cache_dir", "resume", "progress", "track", "tracking_uri",
              "experiment", "model_name", "baseline_model_name", "tracking_timeout_s",
              "tracking_max_retries", "probe_timeout_s", "promotion_lock_timeout_s",
              "min_rows", "min_text_chars", "max_text_chars", "balance_low", "balance_high")


def params(cfg) -> dict:
    """The run's params: every Config field that shapes the model or its data."""
    return {k: "None" if v is None else v for k, v in cfg.to_dict().items()
            if k not in NOT_PARAMS}


def log_datasets(mlflow, splits, source: str) -> None:
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
    """Training callbacks that log to the run through its MetricLog: a flaky server costs
    retries, not points; a server gone for longer than ``tracking_outage_s`` stops training
    at the next checkpoint (after the epoch's points are journaled)."""

    def __init__(self, metrics: MetricLog):
        self.metrics = metrics

    def on_step(self, step: int, m: dict) -> None:
        self.metrics.add({"step/train_loss": m["train_loss"], "step/train_acc": m["train_acc"]},
                         step)

    def on_epoch(self, epoch: int, rec: dict) -> None:
        # The "epoch/" prefix groups these curves first in the UI's chart view.
        self.metrics.add({f"epoch/{k}": rec[k] for k in ("train_loss", "train_acc", "val_loss",
                                                          "val_acc", "epoch_seconds",
                                                          "train_tokens_per_s")}, epoch)
        self.metrics.safe_point(f"after epoch {epoch}, its checkpoint saved")


def _lost_server(e: BaseException, uri: str, cfg, metrics: MetricLog | None):
    """A TrackingLost for an error that came from the tracking server being away (it does not
    answer the probe now), else None: the error is the error."""
    if not isinstance(e, Exception) or isinstance(e, StoreUnavailable) or metrics is None:
        return None
    try:
        probe(uri, cfg.probe_timeout_s)
    except StoreUnavailable:
        metrics.cause = metrics.cause or " ".join(str(e).split())[:160]
        if metrics.failing_since is None:
            metrics.failing_since = metrics.clock()
        return metrics.lost("the run stopped")
    return None


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
    points it already holds are not logged again, and the points an earlier attempt journaled
    but the server never received are sent (``metric_log``). An interrupted attempt (Ctrl-C,
    SIGTERM, a tracking server away for longer than ``tracking_outage_s``) ends its run KILLED,
    any other error FAILED, a killed process leaves it RUNNING; either way the resumed training
    reopens that run and ends it FINISHED.
    Under torchrun, rank 0 alone opens, logs and ends the run; the other ranks train their
    share of each batch, never touch MLflow, and return None.
    """
    with distributed.owned_by_main(cfg) as cfg:
        if not distributed.is_main():
            from sentiment.training.loop import train
            train(cfg)
            return None
        return _train_tracked(cfg, validation_report_dir, tags)


def _train_tracked(cfg, validation_report_dir, tags) -> dict:
    from sentiment.data import imdb
    from sentiment.training.loop import TrainHooks, train
    from sentiment.training.outputs import METRICS
    uri = tracking_uri(cfg)
    mlflow, client = connect(uri, cfg)
    exp_id = ensure_experiment(client, cfg.experiment, uri)
    # Load the splits here so the run knows its data before training starts; train() reuses them.
    splits = imdb.load_splits(cfg)
    dinfo = provenance.data_info(cfg, splits)
    einfo = provenance.encoder_info(cfg.encoder, cfg.encoder_revision)
    resume_id = _resumable_run(cfg, client, uri)
    run_name = f"{cfg.preset}-{cfg.encoder.rsplit('/', 1)[-1]}-{time.strftime('%Y%m%d-%H%M%S')}"
    # A resumed run holds the points logged before the interruption: none is sent twice.
    present = present_points(client, resume_id) if resume_id else set()
    if not resume_id:  # a new MLflow run: an earlier run's journal in this folder is not its
        (Path(cfg.run_dir) / JOURNAL).unlink(missing_ok=True)
    run = mlflow.start_run(run_id=resume_id, experiment_id=None if resume_id else exp_id,
                           run_name=None if resume_id else run_name,
                           log_system_metrics=system_metrics_enabled())
    metrics = None
    try:
        run_id = run.info.run_id
        metrics = MetricLog(client, run_id, uri, cfg.run_dir, cfg.tracking_outage_s, present)
        hooks = _Hooks(metrics)
        if resume_id:
            sent = metrics.replay()
            if sent:
                log.warning("re-sent %d metric points the tracking server had not received "
                            "(from %s)", sent, metrics.journal_path)
        atomic_write_text(Path(cfg.run_dir) / RUN_REF, json.dumps(
            {"run_id": run_id, "tracking_uri": uri, "experiment_id": exp_id}))
        if resume_id:
            mlflow.set_tag("resumed", "true")
        else:  # params are immutable: a resumed run keeps the ones it started with
            mlflow.log_params(params(cfg))
            mlflow.log_params({"data.fingerprint": dinfo["fingerprint"],
                               **{f"data.{k}_rows": v for k, v in dinfo["split_sizes"].items()},
                               **{f"data.sha256.{k}": v["sha256"][:16]
                                  for k, v in list(dinfo.get("files", {}).items())[:20]}})
        env = provenance.environment()
        mlflow.set_tags(training_tags(cfg, dinfo, einfo, tags, env))
        mlflow.set_tag(RUN_TEST_SET, splits.test_fingerprint)  # the gate compares runs by it
        mlflow.log_dict(dinfo, "data/fingerprint.json")
        mlflow.log_dict({"packages": env["packages"], "encoder": einfo, "git": env["git"],
                         "platform": platform.platform()},
                        "environment.json")
        mlflow.log_dict(cfg.to_dict(), CONFIG_ARTIFACT)
        log_datasets(mlflow, splits, dinfo["source"])

        summary = train(cfg, splits=splits,
                        hooks=TrainHooks(on_step=hooks.on_step, on_epoch=hooks.on_epoch))

        t = summary["test"]
        # A blended model's test_* are the blend's; each part's are "<part>_test_*".
        parts = {f"{p}_test_{k}": m[k] for p, m in summary.get("parts", {}).items()
                 for k in TEST_METRICS if k in m}
        stacker = {f"blend/{k}": v for k, v in summary.get("blend", {}).get("stacker", {}).items()
                   if isinstance(v, (int, float))}
        # One test loss: test_log_loss (the model's, or the blend's); the head's own BCE is
        # in metrics.json. Seconds to the millisecond: more digits are noise.
        final = {**{f"test_{k}": t[k] for k in TEST_METRICS if k in t}, **parts, **stacker,
                 "best_epoch": summary["best_epoch"], "best_val_loss": summary["best_val_loss"],
                 **{f"time/{k}": round(v, 3) for k, v in summary["timings"].items()}}
        # An attempt killed after logging these has them already (at step 0).
        metrics.add(final, 0)
        metrics.drain("the run's test metrics are not logged")
        mlflow.log_params({"parameters.total": summary["parameters"]["total"],
                           "parameters.trainable": summary["parameters"]["trainable"],
                           "device.resolved": summary["device"],
                           "encoder_precision.resolved": summary["encoder_precision"]})
        mlflow.log_artifact(str(Path(cfg.run_dir) / METRICS))
        if validation_report_dir:
            _log_validation_report(mlflow, validation_report_dir)
    except BaseException as e:
        # KILLED: interrupted (Ctrl-C, SIGTERM, the server gone), --resume continues this run;
        # FAILED: an error.
        lost = _lost_server(e, uri, cfg, metrics)
        end_run(mlflow, status_for(lost or e))
        if lost is not None:
            raise lost from None
        raise
    end_run(mlflow, status_for(None))
    return {"run_id": run_id, "experiment_id": exp_id, "tracking_uri": uri,
            "run_dir": summary["run_dir"], "test_accuracy": t["accuracy"], "test_f1": t["f1"],
            "parts": {p: m["accuracy"] for p, m in summary.get("parts", {}).items()},
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


def example_predictions(run_dir: str | Path, cfg, texts: list[str] | None = None) -> list[dict]:
    from sentiment.blend.blended_model import load_predictor
    from sentiment.model.predict import EXAMPLES
    model = load_predictor(run_dir, device=cfg.device, batch_size=cfg.eval_batch_size)
    texts = list(texts or EXAMPLES)
    return [{"text": t, **p} for t, p in zip(texts, model.predict(texts))]


def _against_baseline(client, run_id: str, metrics: dict, summary: dict,
                      baseline: dict | None) -> list[tuple[str, float]] | None:
    """The models scored on the run's test reviews, this one first: its parts (a blend) and
    the baseline when `baseline` was tested on the same reviews (its ``test_set``); with it,
    the run's metric ``lift_over_baseline`` and a description that opens with the result."""
    models = [("this model", float(metrics["accuracy"]))]
    models += [(f"{p.replace('_', '-')} part alone", float(m["accuracy"]))
               for p, m in (summary.get("parts") or {}).items()]
    tags = client.get_run(run_id).data.tags
    if not baseline or baseline.get("test_set") != tags.get(RUN_TEST_SET):
        return models if len(models) > 1 else None
    base = float(baseline["accuracy"])
    lift = float(metrics["accuracy"]) - base
    models.append((f"baseline ({baseline.get('kind', 'bag-of-words')})", base))
    client.log_metric(run_id, LIFT_OVER_BASELINE, round(lift, 6))
    note = tags.get(DESCRIPTION, "")
    result = (f"**Test accuracy {metrics['accuracy']:.4f}** on {metrics['n']:,} reviews: "
              f"{lift:+.4f} over the bag-of-words baseline ({base:.4f}, run "
              f"`{baseline.get('run_id', '?')}`) on the same reviews.")
    if not note.startswith("**Test accuracy"):  # a retry keeps one result line
        client.set_tag(run_id, DESCRIPTION, f"{result}\n\n{note}")
    return models


def log_evaluation(run_id: str, run_dir: str, cfg, baseline: dict | None = None) -> dict:
    """Metrics, plots, the confidently wrong reviews, example predictions and the model card,
    from run_dir's test predictions, logged to run `run_id`. Given the `baseline` the flow
    trained (``baseline_run.train_baseline``'s result) and tested on the same reviews, also
    the lift over it and a chart of both (``evaluation/comparison.png``). Returns the test
    metrics."""
    import pandas as pd
    from mlflow.entities import Metric

    from sentiment.evaluation import report as reporting
    from sentiment.evaluation.metrics import classification_metrics
    from sentiment.training.outputs import METRICS, TEST_PREDICTIONS
    uri = tracking_uri(cfg)
    mlflow, client = connect(uri, cfg)
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
        compared = _against_baseline(client, run_id, metrics, summary, baseline)
        if compared:
            reporting.plot_comparison(compared, int(metrics["n"]),
                                      client.get_run(run_id).data.tags.get(RUN_TEST_SET),
                                      out / reporting.COMPARISON)
        # The card sits at the top of the run's artifacts, where a reviewer looks first.
        card = files["model_card"].rename(Path(tmp) / files["model_card"].name)
        client.log_artifacts(run_id, str(out), "evaluation")
        client.log_artifact(run_id, str(card))
    # train_tracked already logged these; a second point at step 0 would only clutter history.
    have = client.get_run(run_id).data.metrics
    now = int(time.time() * 1000)
    new = [Metric(f"test_{k}", float(metrics[k]), now, 0) for k in TEST_METRICS
           if f"test_{k}" not in have]
    slices = _slice_rows(preds, cfg)
    new += [Metric(SLICE_METRIC.format(slice=r["slice"]), r["accuracy"], now, 0)
            for r in slices if r["accuracy"] is not None]
    if new:
        client.log_batch(run_id, metrics=new)
    client.log_table(run_id, data=pd.DataFrame(slices), artifact_file=SLICE_TABLE)
    return metrics


def _slice_rows(preds, cfg) -> list[dict]:
    """Test accuracy per slice (``evaluation.slices``); `cut`/`whole` by the model's own
    tokenizer and max_length."""
    from sentiment.encoding import encoders
    from sentiment.evaluation.slices import slice_masks, slice_table
    texts = preds["text"].tolist()
    try:
        tok = encoders.load_tokenizer(encoders.resolve(cfg.encoder, cfg.encoder_revision))
        counts = [len(ids) for ids in tok(texts, add_special_tokens=False, truncation=False,
                                          verbose=False)["input_ids"]]
    except Exception as e:  # the text-only slices still say something
        log.warning("no cut/whole slices: the tokenizer did not load (%s)", e)
        counts = None
    return slice_table(preds["label"].to_numpy(), preds["prob"].to_numpy(),
                       slice_masks(texts, counts, cfg.max_length))
