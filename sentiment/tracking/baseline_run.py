"""The baseline's tracked run: the bag-of-words model trained on the training run's own splits,
logged as an MLflow run of its own (tag ``role=baseline``) and registered by name as a pyfunc
model made of plain files, so the promotion gate can set a candidate beside it.

Both runs carry the tag ``data.test_set`` (``Splits.test_fingerprint``): equal tags mean the
two accuracies were measured on the same reviews.
"""

from __future__ import annotations

import json
import logging
import sys
import tempfile
import time
from pathlib import Path

from sentiment.baseline import tfidf
from sentiment.tracking import provenance
from sentiment.data.imdb import load_splits
from sentiment.tracking.store import connect, ensure_experiment, tracking_uri
from sentiment.tracking.registry import (MODEL_NAME_IN_RUN, PYFUNC_FILE, ensure_registered_model, export_code,
                       model_signature, pip_requirements)
from sentiment.tracking.training_run import DESCRIPTION, FLOW_RUN_URL, SOURCE_NAME, SOURCE_TYPE, TEST_METRICS

log = logging.getLogger(__name__)

ROLE_TAG, ROLE = "role", "baseline"
TEST_SET_TAG = "data.test_set"    # the same tag the training run carries
BASELINE_ARTIFACT = "baseline"    # pyfunc_model.load_context loads the baseline from it
# Config fields that decide which reviews the baseline sees: logged as the run's params.
DATA_FIELDS = ("data", "split_seed", "train_fraction", "max_train", "max_valid", "max_test")
# What the baseline's pyfunc imports: no torch, no transformers.
BASELINE_PACKAGES = ("mlflow", "safetensors", "numpy", "pandas", "scikit-learn")


def baseline_fields(cfg) -> dict:
    """The Config fields of the vectorizer and the classifier (model name excluded)."""
    return {k: v for k, v in cfg.to_dict().items()
            if k.startswith("baseline_") and k != "baseline_model_name"}


def _requirements() -> list[str]:
    own = [r for r in pip_requirements() if r.split("==", 1)[0] in BASELINE_PACKAGES]
    sklearn = provenance.package_version("scikit-learn")
    return own + ([f"scikit-learn=={sklearn}"] if sklearn else [])


def _tags(cfg, splits, res: dict, extra: dict | None) -> dict:
    n = res["split_sizes"]
    s = res["model"].settings
    tags = {
        ROLE_TAG: ROLE, TEST_SET_TAG: splits.test_fingerprint,
        "data_fingerprint": splits.fingerprint, "data.source": provenance.data_source(cfg.data),
        "preset": cfg.preset,
        DESCRIPTION: (f"{cfg.preset} preset baseline: TF-IDF word 1-{s.ngram_max} grams "
                      f"({res['n_features']} features) + logistic regression (C={s.c:g}), "
                      f"{n['train']} train / {n['test']} test reviews from "
                      f"{provenance.data_source(cfg.data)}"),
        **{f"pkg.{k}": v for k, v in provenance.package_versions().items()},
    }
    git = provenance.git_info()
    if git:
        tags.update({"mlflow.source.git.commit": git["commit"],
                     **{f"git.{k}": v for k, v in git.items()}})
    extra = {k: str(v) for k, v in (extra or {}).items() if v is not None}
    if extra.get(FLOW_RUN_URL):
        tags.update({SOURCE_NAME: extra[FLOW_RUN_URL], SOURCE_TYPE: "JOB"})
    # The role and the test set describe what this run is; a caller's tag cannot rename them.
    return {**tags, **extra, ROLE_TAG: ROLE, TEST_SET_TAG: splits.test_fingerprint}


BASELINE_DESCRIPTION = (
    "IMDB review sentiment, the bag-of-words baseline: TF-IDF over word "
    "1-2 grams and a logistic regression, trained beside every training run on its "
    "training split. A promoted model must beat it on the same test set. Input: a "
    "`text` column; output: `probability` (P(positive)) and `label`.")


def train_baseline(cfg, tags: dict[str, str] | None = None) -> dict:
    """Fit and test the baseline on cfg's splits (those the training run uses), log it as its
    own MLflow run in cfg.experiment and register it as a new version of
    cfg.baseline_model_name.

    Returns ``{run_id, accuracy, test_set, version, model_uri, seconds, metrics}``: what the
    promotion gate takes as the baseline (``metrics``: every test metric, for reports).

    Creating the version is the run's last required write: a failure before it marks the run
    FAILED with no version, so a retry starts a clean run instead of leaving a version behind.
    """
    from mlflow.utils.mlflow_tags import MLFLOW_MODEL_VERSIONS
    t0 = time.perf_counter()
    uri = tracking_uri(cfg)
    mlflow, client = connect(uri)
    exp_id = ensure_experiment(client, cfg.experiment, uri)
    splits = load_splits(cfg)
    res = tfidf.train_and_test(cfg, splits)
    test = res["test"]
    name = cfg.baseline_model_name
    run_name = f"{cfg.preset}-baseline-{time.strftime('%Y%m%d-%H%M%S')}"
    signature, example = model_signature()
    # Seconds long: system metrics would record nothing but the sampler's start-up.
    with mlflow.start_run(experiment_id=exp_id, run_name=run_name,
                          log_system_metrics=False) as run:
        run_id = run.info.run_id
        mlflow.set_tags(_tags(cfg, splits, res, tags))
        fields = {**baseline_fields(cfg), "preset": cfg.preset,
                  **{k: getattr(cfg, k) for k in DATA_FIELDS}}
        mlflow.log_params({**{k: "None" if v is None else v for k, v in fields.items()},
                           "data.fingerprint": splits.fingerprint,
                           "data.test_set": splits.test_fingerprint,
                           **{f"data.{k}_rows": v for k, v in res["split_sizes"].items()},
                           "n_features": res["n_features"]})
        mlflow.log_metrics({**{f"test_{k}": test[k] for k in TEST_METRICS if k in test},
                            **{f"time/{k}": v for k, v in res["timings"].items()}})
        with tempfile.TemporaryDirectory() as tmp:
            model_dir = res["model"].save(Path(tmp) / BASELINE_ARTIFACT)
            code_dir = export_code(Path(tmp) / "code")
            # As in registry.register_model: log_model's check of the input example puts the
            # temporary code folder on sys.path, which must not outlive this call.
            saved_path = list(sys.path)
            try:
                info = mlflow.pyfunc.log_model(
                    name=MODEL_NAME_IN_RUN, python_model=str(PYFUNC_FILE),
                    artifacts={BASELINE_ARTIFACT: str(model_dir)}, code_paths=[str(code_dir)],
                    signature=signature, input_example=example,
                    pip_requirements=_requirements(),
                    metadata={ROLE_TAG: ROLE, TEST_SET_TAG: splits.test_fingerprint,
                              "data_fingerprint": splits.fingerprint,
                              "n_features": res["n_features"]})
            finally:
                sys.path[:] = saved_path
        ensure_registered_model(client, name, BASELINE_DESCRIPTION, tags={ROLE_TAG: ROLE})
        acc = float(test["accuracy"])
        mv = client.create_model_version(
            name, source=info.model_uri, run_id=run_id, model_id=info.model_id,
            tags={"test_accuracy": f"{acc:.6f}", "test_set": splits.test_fingerprint,
                  "run_id": run_id, "data_fingerprint": splits.fingerprint, ROLE_TAG: ROLE},
            description=f"TF-IDF + logistic regression, test accuracy {acc:.4f} on test set "
                        f"`{splits.test_fingerprint}` ({test['n']} reviews), from run "
                        f"`{run_id}`.")
        try:  # what mlflow.register_model records too: the logged model lists its versions
            client.set_logged_model_tags(info.model_id, {MLFLOW_MODEL_VERSIONS: json.dumps(
                [{"name": name, "version": str(mv.version)}])})
        except Exception as e:  # a display link; the version is registered and complete
            log.warning("could not link model version %s to its logged model: %s",
                        mv.version, e)
    return {"run_id": run_id, "accuracy": acc, "test_set": splits.test_fingerprint,
            "version": int(mv.version), "model_uri": f"models:/{name}/{mv.version}",
            "seconds": round(time.perf_counter() - t0, 2),
            "metrics": {"n": test["n"],
                        **{k: float(test[k]) for k in TEST_METRICS if k in test}}}
