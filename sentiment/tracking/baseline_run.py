"""The baseline's tracked run: the bag-of-words model trained on the training run's own splits,
logged as an MLflow run of its own (tag ``role=baseline``) and registered by name as a pyfunc
model made of plain files, so the promotion gate can set a candidate beside it.

Both runs carry the tag ``data.test_set`` (``Splits.test_fingerprint``): equal tags mean the
two accuracies were measured on the same reviews.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import time
from pathlib import Path

import pandas as pd

from sentiment.baseline import kinds, run_copy
from sentiment.evaluation.slices import slice_masks, slice_table
from sentiment.tracking import provenance
from sentiment.tracking.logged_model import (
    ensure_registered_model,
    link_version,
    log_pyfunc,
    pip_requirements,
)
from sentiment.tracking.names import (
    BASELINE_ARTIFACT,
    BASELINE_MODEL_NAME_IN_RUN,
    BASELINE_ROLE,
    DATA_FINGERPRINT,
    DATA_SOURCE,
    ROLE,
    RUN_TEST_SET,
    SLICE_METRIC,
    SLICE_TABLE,
    TEST_METRICS,
    VERSION_ACCURACY,
    VERSION_RUN_ID,
    VERSION_TEST_SET,
    format_accuracy,
)
from sentiment.tracking.run_end import end_run, status_for
from sentiment.tracking.run_tags import run_tags
from sentiment.tracking.store import connect, ensure_experiment, tracking_uri
from sentiment.tracking.training_run import log_datasets

log = logging.getLogger(__name__)

# What the baseline's pyfunc imports: no torch, no transformers.
BASELINE_PACKAGES = ("mlflow", "safetensors", "numpy", "pandas", "scikit-learn")


def _requirements() -> list[str]:
    own = [r for r in pip_requirements() if r.split("==", 1)[0] in BASELINE_PACKAGES]
    sklearn = provenance.package_version("scikit-learn")
    return own + ([f"scikit-learn=={sklearn}"] if sklearn else [])


def _environment() -> dict:
    """The packages and code the baseline ran: no torch, no transformers, no encoder."""
    env = provenance.environment()
    keep = {"python", "imdb-sentiment", *BASELINE_PACKAGES}
    return {**env, "packages": {k: v for k, v in env["packages"].items() if k in keep}}


def _tags(cfg, splits, res: dict, extra: dict | None) -> dict:
    n = res["split_sizes"]
    s = res["model"].settings
    source = provenance.data_source(cfg.data)
    description = (f"**Test accuracy {res['test']['accuracy']:.4f}** on {n['test']:,} reviews, "
                   "the bar a promoted model must clear on them.\n\n"
                   f"{cfg.preset} preset baseline: "
                   f"{kinds.describe(cfg.baseline_kind, s, res['n_features'])}, "
                   f"{n['train']} train / {n['test']} test reviews from {source}")
    own = {DATA_FINGERPRINT: splits.fingerprint, DATA_SOURCE: source, "preset": cfg.preset}
    # The role and the test set describe what this run is; a caller's tag cannot rename them.
    return run_tags(description, own, extra, environment=_environment(),
                    fixed={ROLE: BASELINE_ROLE, RUN_TEST_SET: splits.test_fingerprint})


def _log_report(client, run_id: str, cfg, splits, res: dict, source: str) -> None:
    """The same report as a training run's: plots, confidently wrong reviews and a model card
    (at the top of the artifacts), from the baseline's test probabilities."""
    import pandas as pd

    from sentiment.evaluation import report as reporting
    from sentiment.evaluation.metrics import classification_metrics
    test = splits.test
    preds = pd.DataFrame({"text": test["text"].to_numpy(), "label": test["label"].to_numpy(),
                          "prob": res["probs"]})
    metrics = classification_metrics(preds["label"].to_numpy(), preds["prob"].to_numpy())
    what = kinds.describe(cfg.baseline_kind, res["model"].settings, res["n_features"])
    card = reporting.baseline_card(metrics, what, {
        "source": source, "fingerprint": splits.fingerprint, "test_set": splits.test_fingerprint,
        "split_sizes": res["split_sizes"]}, cfg.baseline_model_name, run_id)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "evaluation"
        files = reporting.write_report(preds, out, metrics, card=card)
        card_file = files["model_card"].rename(Path(tmp) / files["model_card"].name)
        client.log_artifacts(run_id, str(out), "evaluation")
        client.log_artifact(run_id, str(card_file))


BASELINE_DESCRIPTION = (
    "IMDB review sentiment, the bag-of-words baseline: word n-grams (TF-IDF or NBSVM) and a "
    "logistic regression, trained beside every training run on the training split. A "
    "promoted model must beat it on the same test set. Input: a "
    "`text` column; output: `probability` (P(positive)) and `label`.")


@contextlib.contextmanager
def _killed_when_interrupted(mlflow):
    """MLflow's run context ends any raised run FAILED; an interrupted one is KILLED."""
    try:
        yield
    except BaseException as e:
        if status_for(e) == "KILLED":
            end_run(mlflow, "KILLED")
        raise


def train_baseline(cfg, tags: dict[str, str] | None = None) -> dict:
    """Fit and test the baseline on cfg's splits (those the training run uses), log it as its
    own MLflow run in cfg.experiment and register it as a new version of
    cfg.baseline_model_name.

    Returns ``{run_id, accuracy, test_set, version, model_uri, seconds, metrics}``: what the
    promotion gate takes as the baseline (``metrics``: every test metric, for reports).

    Creating the version is the run's last required write: a failure before it marks the run
    FAILED with no version, so a retry starts a clean run instead of leaving a version behind.
    """
    t0 = time.perf_counter()
    uri = tracking_uri(cfg)
    mlflow, client = connect(uri, cfg)
    exp_id = ensure_experiment(client, cfg.experiment, uri)
    splits = kinds.baseline_splits(cfg)
    res = kinds.train_and_test(cfg, splits)
    # The run folder's copy, for a blended model's bag-of-words part (run_copy.py).
    run_copy.save(res["model"], cfg.run_dir, run_copy.key(cfg, splits))
    test = res["test"]
    name = cfg.baseline_model_name
    run_name = f"{cfg.preset}-baseline-{time.strftime('%Y%m%d-%H%M%S')}"
    # Seconds long: system metrics would record nothing but the sampler's start-up.
    with mlflow.start_run(experiment_id=exp_id, run_name=run_name,
                          log_system_metrics=False) as run, _killed_when_interrupted(mlflow):
        run_id = run.info.run_id
        mlflow.set_tags(_tags(cfg, splits, res, tags))
        # The model's settings and the fields that decide which reviews it sees.
        fields = {**run_copy.settings(cfg), "preset": cfg.preset,
                  **{k: getattr(cfg, k) for k in run_copy.SPLIT_FIELDS}}
        mlflow.log_params({**{k: "None" if v is None else v for k, v in fields.items()},
                           "data.fingerprint": splits.fingerprint,
                           "data.test_set": splits.test_fingerprint,
                           **{f"data.{k}_rows": v for k, v in res["split_sizes"].items()},
                           "n_features": res["n_features"]})
        # Slices by the review's text only: a bag-of-words model reads every review whole.
        slices = slice_table(splits.test["label"].to_numpy(), res["probs"],
                             slice_masks(splits.test["text"].tolist()))
        mlflow.log_metrics({**{f"test_{k}": test[k] for k in TEST_METRICS if k in test},
                            **{f"time/{k}": v for k, v in res["timings"].items()},
                            **{SLICE_METRIC.format(slice=r["slice"]): r["accuracy"]
                               for r in slices if r["accuracy"] is not None}})
        mlflow.log_table(pd.DataFrame(slices), artifact_file=SLICE_TABLE)
        source = provenance.data_source(cfg.data)
        log_datasets(mlflow, splits, source)
        _log_report(client, run_id, cfg, splits, res, source)
        with tempfile.TemporaryDirectory() as tmp:
            model_dir = res["model"].save(Path(tmp) / BASELINE_ARTIFACT)
            info = log_pyfunc(mlflow, run_id, {BASELINE_ARTIFACT: str(model_dir)},
                              _requirements(), name=BASELINE_MODEL_NAME_IN_RUN,
                              metadata={ROLE: BASELINE_ROLE, VERSION_TEST_SET: splits.test_fingerprint,
                                        DATA_FINGERPRINT: splits.fingerprint,
                                        "n_features": res["n_features"]})
        ensure_registered_model(client, name, BASELINE_DESCRIPTION, tags={ROLE: BASELINE_ROLE})
        acc = float(test["accuracy"])
        mv = client.create_model_version(
            name, source=info.model_uri, run_id=run_id, model_id=info.model_id,
            tags={VERSION_ACCURACY: format_accuracy(acc), VERSION_TEST_SET: splits.test_fingerprint,
                  VERSION_RUN_ID: run_id, DATA_FINGERPRINT: splits.fingerprint,
                  ROLE: BASELINE_ROLE},
            description=f"{kinds.describe(cfg.baseline_kind, res['model'].settings, res['n_features'])}"
                        f", test accuracy {acc:.4f} on test set "
                        f"`{splits.test_fingerprint}` ({test['n']} reviews), from run "
                        f"`{run_id}`.")
        try:
            link_version(client, info.model_id, name, mv.version)
        except Exception as e:  # a display link; the version is registered and complete
            log.warning("could not link model version %s to its logged model: %s",
                        mv.version, e)
    return {"run_id": run_id, "accuracy": acc, "test_set": splits.test_fingerprint,
            "version": int(mv.version), "model_uri": f"models:/{name}/{mv.version}",
            "kind": cfg.baseline_kind, "train_rows": res["split_sizes"]["train"],
            "seconds": round(time.perf_counter() - t0, 2),
            "metrics": {"n": test["n"],
                        **{k: float(test[k]) for k in TEST_METRICS if k in test}}}
