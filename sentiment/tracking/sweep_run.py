"""A head sweep under MLflow: one parent run, each trial a nested run, the Optuna study in the
tracking database's engine.

The parent run holds the sweep's settings, the comparison table (``sweep/table.json`` as an
MLflow table, ``sweep/table.md``) and its plot (``sweep/accuracy_vs_speed.png``), and names its
best trial (tags ``sweep.best_run_id``, ``sweep.best_trial``). Each trial's run is tagged and
logged as a training run is (test metrics, data and test-set fingerprints, ``mlflow_run.json``
in its folder), so the best one registers and gates like any candidate (``register_model``).

The study lives in ``cfg.sweep_storage``, else ``$SENTIMENT_SWEEP_STORAGE``, else ``optuna.db``
beside a SQLite tracking store (mlflow/optuna.db by default). Behind a tracking server the
study needs a database URL: server mode's PostgreSQL (docs/server-mode.md), where several
workers' sweeps of one study name run trials of one study at once.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

from sentiment.common.files import atomic_write_text
from sentiment.tracking import provenance
from sentiment.tracking.names import RUN_TEST_SET, TEST_METRICS
from sentiment.tracking.run_ref import RUN_REF
from sentiment.tracking.run_tags import run_tags
from sentiment.tracking.store import connect, ensure_experiment, sqlite_path, tracking_uri
from sentiment.tracking.training_run import training_tags

STORAGE_ENV = "SENTIMENT_SWEEP_STORAGE"
STUDY_FILE = "optuna.db"  # beside a SQLite tracking store
SWEEPS_DIR = "sweeps"     # in a preset's runs folder: one folder per sweep
# Parent-run tags and the role of each run in the sweep.
ROLE = "sweep.role"
PARENT, TRIAL = "parent", "trial"
STUDY_TAG = "sweep.study"
TRIAL_TAG = "sweep.trial"
BEST_RUN_TAG = "sweep.best_run_id"
BEST_TRIAL_TAG = "sweep.best_trial"
TABLE_ARTIFACT = "sweep/table.json"
TABLE_MARKDOWN = "sweep/table.md"
PLOT_ARTIFACT = "sweep/accuracy_vs_speed.png"


def study_storage(cfg, uri: str) -> str:
    """The Optuna storage URL of this sweep's study (see the module docstring)."""
    url = cfg.sweep_storage or os.environ.get(STORAGE_ENV)
    if url:
        return url
    db = sqlite_path(uri)
    if db is None:
        raise ValueError(f"tracking store {uri} is not a SQLite file: give the study a database "
                         f"with --sweep-storage or ${STORAGE_ENV} (e.g. server mode's "
                         "postgresql+psycopg2://.../optuna)")
    return f"sqlite:///{db.parent / STUDY_FILE}"


def shown_url(url: str) -> str:
    """A storage URL fit for a tag: without its password."""
    try:
        from sqlalchemy.engine import make_url
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.split("@")[-1]


def sweep_folder(cfg) -> Path:
    """A new folder for this sweep: under runs/<preset>/sweeps when run_dir was left at the
    preset's value, else under run_dir."""
    from sentiment.training import run_folder
    root = Path(cfg.run_dir)
    if run_folder.is_preset_root(cfg):
        root = root / SWEEPS_DIR
    return run_folder.new_run_dir(root)


def sweep_tracked(cfg, tags: dict | None = None, report=print) -> dict:
    """Run the sweep `cfg` describes (budget: ``sweep_trials``, ``sweep_minutes``) and return
    {parent_run_id, study, best: {run_id, run_dir, trial, params, val_accuracy,
    test_accuracy}, rows}."""
    import optuna

    from sentiment.data import imdb
    from sentiment.training import sweep
    from sentiment.training.loop import prepare
    cfg = sweep.sweep_config(cfg)
    uri = tracking_uri(cfg)
    mlflow, client = connect(uri, cfg)
    exp_id = ensure_experiment(client, cfg.experiment, uri)
    storage = study_storage(cfg, uri)
    splits = imdb.load_splits(cfg)
    dinfo = provenance.data_info(cfg, splits)
    einfo = provenance.encoder_info(cfg.encoder, cfg.encoder_revision)
    env = provenance.environment()
    folder = sweep_folder(cfg)
    study_name = cfg.sweep_study or f"{cfg.preset}-heads-{dinfo['fingerprint'][:12]}"
    heads = sweep.parse_heads(cfg.sweep_heads)
    prep = prepare(cfg.replace(run_dir=str(folder)), splits)  # the encoder runs here, once
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name=study_name, storage=storage, direction="maximize",
                                load_if_exists=True)
    # Another worker's sweep of the same study draws other trials: the seed counts its trials.
    study.sampler = optuna.samplers.TPESampler(seed=cfg.seed + len(study.trials))
    stamp = time.strftime("%Y%m%d-%H%M%S")
    description = (f"Head sweep ({', '.join(heads)}) on the frozen {cfg.encoder}'s cached "
                   f"states: {cfg.sweep_trials} trials, study {study_name}")
    parent_tags = run_tags(description, {ROLE: PARENT, STUDY_TAG: study_name,
                                         "sweep.storage": shown_url(storage),
                                         "run_dir": str(folder.resolve())}, tags,
                           environment=env)
    rows: list[dict] = []
    parent = mlflow.start_run(experiment_id=exp_id, run_name=f"sweep-{cfg.preset}-{stamp}",
                              tags=parent_tags)
    try:
        mlflow.log_params({"sweep.heads": cfg.sweep_heads, "sweep.trials": cfg.sweep_trials,
                           "sweep.minutes": str(cfg.sweep_minutes), "preset": cfg.preset,
                           "encoder": cfg.encoder, "max_length": cfg.max_length,
                           "epochs": cfg.epochs, "batch_size": cfg.batch_size,
                           "data.fingerprint": dinfo["fingerprint"],
                           **{f"data.{k}_rows": v for k, v in dinfo["split_sizes"].items()},
                           "encode_seconds": round(prep.timings.get("encode_s", 0.0), 2)})

        def objective(trial):
            overrides = sweep.suggest(trial, heads)
            tcfg = cfg.replace(**overrides, run_dir=str(folder / f"trial-{trial.number:03d}"))
            row = _trial_run(mlflow, tcfg, prep, trial.number, overrides, study_name,
                             training_tags(tcfg, dinfo, einfo, tags, env), splits, uri, exp_id)
            rows.append(row)
            trial.set_user_attr("run_id", row["run_id"])
            report(f"trial {trial.number} {row['head']}: val {row['val_accuracy']:.2%}, "
                   f"test {row['test_accuracy']:.2%}, {row['train_seconds']:.1f} s")
            return row["val_accuracy"]

        timeout = cfg.sweep_minutes * 60 if cfg.sweep_minutes else None
        study.optimize(objective, n_trials=cfg.sweep_trials, timeout=timeout, catch=())
        best = max(rows, key=lambda r: r["val_accuracy"]) if rows else None
        _log_comparison(mlflow, rows)
        if best is not None:
            mlflow.set_tags({BEST_RUN_TAG: best["run_id"], BEST_TRIAL_TAG: str(best["trial"])})
            mlflow.log_metrics({"best_val_accuracy": best["val_accuracy"],
                                "best_test_accuracy": best["test_accuracy"],
                                "trials": len(rows)})
    except BaseException:
        mlflow.end_run("FAILED")
        raise
    mlflow.end_run("FINISHED")
    return {"parent_run_id": parent.info.run_id, "experiment_id": exp_id, "tracking_uri": uri,
            "study": study_name, "storage": shown_url(storage), "run_dir": str(folder),
            "best": best, "rows": rows}


def _trial_run(mlflow, cfg, prep, number: int, overrides: dict, study: str, tags: dict,
               splits, uri: str, exp_id: str) -> dict:
    """One trial as a nested run, logged as a training run is."""
    from sentiment.training import sweep
    head = overrides["head"]
    # A nested run takes the active experiment, not its parent's: name it.
    with mlflow.start_run(experiment_id=exp_id, run_name=f"trial-{number:03d}-{head}", nested=True,
                          tags={**tags, ROLE: TRIAL, STUDY_TAG: study, TRIAL_TAG: str(number),
                                RUN_TEST_SET: splits.test_fingerprint}) as run:
        run_id = run.info.run_id
        Path(cfg.run_dir).mkdir(parents=True, exist_ok=True)
        atomic_write_text(Path(cfg.run_dir) / RUN_REF, json.dumps(
            {"run_id": run_id, "tracking_uri": uri, "experiment_id": exp_id}))
        mlflow.log_params({k: "None" if v is None else v for k, v in cfg.to_dict().items()})
        result = sweep.train_trial(cfg, prep)
        summary = json.loads((Path(cfg.run_dir) / "metrics.json").read_text())
        mlflow.log_metrics({**{f"test_{k}": summary["test"][k] for k in TEST_METRICS
                               if k in summary["test"]},
                            "val_accuracy": result["val_accuracy"],
                            "best_val_loss": summary["best_val_loss"],
                            "best_epoch": result["best_epoch"],
                            "time/train_s": result["train_seconds"],
                            "train_tokens_per_s": result["train_tokens_per_s"],
                            "inference_reviews_per_s": result["inference_reviews_per_s"],
                            "parameters": result["parameters"]})
        mlflow.log_param("parameters.total", result["parameters"])
        mlflow.log_artifact(str(Path(cfg.run_dir) / "metrics.json"))
    settings = ", ".join(f"{k}={v:.2g}" if isinstance(v, float) else f"{k}={v}"
                         for k, v in overrides.items() if k != "head")
    return {"trial": number, **result, "params": settings, "run_id": run_id,
            "run_dir": cfg.run_dir, "overrides": overrides}


def _log_comparison(mlflow, rows: list[dict]) -> None:
    from sentiment.training import sweep
    if not rows:
        return
    table = {c: [r[c] for r in rows] for c in sweep.COLUMNS}
    table["run_id"] = [r["run_id"] for r in rows]
    mlflow.log_table(table, artifact_file=TABLE_ARTIFACT)
    mlflow.log_text(sweep.markdown_table(rows), TABLE_MARKDOWN)
    with tempfile.TemporaryDirectory() as tmp:
        path = sweep.plot(rows, Path(tmp) / Path(PLOT_ARTIFACT).name)
        mlflow.log_artifact(str(path), artifact_path=str(Path(PLOT_ARTIFACT).parent))
