"""The sweep flow `sweep-heads`: probe the registry → one frozen-encoder pass over the data
(cached) → Optuna trials over head type and its settings, each a nested MLflow run under one
parent run → the comparison table → optionally register the best trial and gate it like any
candidate (against the champion and the bag-of-words baseline on the same test set).
"""

from __future__ import annotations

from typing import Any, Literal, Optional

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from flows.failure import failed
from flows.mlflow_link import mlflow_run_url
from flows.params import DEFAULT_PRESET, config_from_params
from flows.run_tags import flow_run_tags
from sentiment.config import Config
from sentiment.training import sweep
from tasks import probe_registry, promote_model, register_model, run_sweep, train_baseline

SWEEP_KEY = "sentiment-sweep"


@flow(name="sweep-heads", log_prints=True, persist_result=False)
def sweep_sentiment(
    preset: Literal["smoke", "quick", "full", "homework"] = DEFAULT_PRESET,
    data: Optional[str] = None,
    run_dir: Optional[str] = None,
    cache_dir: Optional[str] = None,
    encoder: Optional[str] = None,
    max_train: Optional[int] = None,
    max_valid: Optional[int] = None,
    max_test: Optional[int] = None,
    epochs: Optional[int] = None,
    batch_size: Optional[int] = None,
    sweep_heads: Optional[str] = None,
    sweep_trials: Optional[int] = None,
    sweep_minutes: Optional[float] = None,
    sweep_study: Optional[str] = None,
    sweep_storage: Optional[str] = None,
    tracking_uri: Optional[str] = None,
    experiment: Optional[str] = None,
    model_name: Optional[str] = None,
    overrides: Optional[dict[str, Any]] = None,
    register_best: bool = False,
    promote: bool = False,
) -> dict:
    """A head sweep on cached frozen-encoder states; its best trial registered and gated on ask.

    Every parameter but `preset`, `overrides`, `register_best` and `promote` is the
    `sentiment.config.Config` field of that name, described by its help; left empty, it keeps the
    preset's value (`sentiment sweep --help` lists them). Returns the parent run's id and link, the
    study, the best trial, and the registered version when asked.

    Args:
        preset: Named preset the other parameters override: smoke (seconds, for checks), quick
            (minutes on 2 CPU cores; what `make run` trains), full (the full 17,500 / 7,500 /
            25,000 split), homework (the original model: frozen encoder, the full split at 512
            tokens).
        data: IMDB source: a folder of train/test parquet files, an aclImdb/ folder or .tar.gz,
            or a Hugging Face Hub dataset id. Empty: the preset's value.
        run_dir: Folder of the run: checkpoints, the final model and reports. Left at the
            preset's value (runs/<preset>), each run creates its own folder in it,
            runs/<preset>/<YYYYmmdd-HHMMSS>-<6 hex>, and runs/<preset>/latest points at the
            newest finished one; any other folder is used as given, by one run at a time
            (--resume needs it). Empty: the preset's value.
        cache_dir: Directory for the tokenization and encoder-state caches. Empty: the preset's
            value.
        encoder: Encoder: 'minilm' (packaged all-MiniLM-L6-v2, offline), a Hugging Face Hub id
            (e.g. bert-base-uncased) or a local path. Empty: the preset's value.
        max_train: Stratified subset size of the training split (None: all). Empty: the preset's
            value.
        max_valid: Stratified subset size of the validation split (None: all). Empty: the
            preset's value.
        max_test: Stratified subset size of the test split (None: all). Empty: the preset's
            value.
        epochs: Training epochs. Empty: the preset's value.
        batch_size: Training batch size (reviews). Empty: the preset's value.
        sweep_heads: Sweep: the heads it searches over, comma-separated. Empty: the preset's
            value.
        sweep_trials: Sweep budget: trials this sweep runs (its study may hold earlier ones).
            Empty: the preset's value.
        sweep_minutes: Sweep budget: no new trial starts after this many minutes (None: no time
            limit). Empty: the preset's value.
        sweep_study: Sweep: the Optuna study's name; sweeps of one name share their trials
            (None: '<preset>-heads-<data fingerprint>'). Empty: the preset's value.
        sweep_storage: Sweep: the Optuna study's database URL (None: $SENTIMENT_SWEEP_STORAGE,
            else optuna.db beside a SQLite tracking store; a tracking server needs one, e.g.
            server mode's PostgreSQL database). Empty: the preset's value.
        tracking_uri: MLflow tracking URI (None: $MLFLOW_TRACKING_URI or the local SQLite store
            under mlflow/). Empty: the preset's value.
        experiment: MLflow experiment name. Empty: the preset's value.
        model_name: Registered model name in the MLflow registry. Empty: the preset's value.
        overrides: Any other Config field by name, as a JSON object, e.g. {"lr": 0.0003}.
        register_best: Register the sweep's best trial (by validation accuracy) as a model
            version, after training the bag-of-words baseline on the same splits.
        promote: Register the best trial and run the promotion gate on it, as for any candidate.
    """
    params = locals()  # first statement: exactly the parameters
    try:
        return stages(config_from_params(params), register_best, promote)
    except Exception as e:
        return failed(e)


def stages(cfg: Config, register_best: bool, promote: bool) -> dict:
    """The flow's stages, in order; the sweep's summary."""
    probe_registry(cfg)
    result = run_sweep(cfg, tags=flow_run_tags())
    url = mlflow_run_url(result["tracking_uri"], result["experiment_id"],
                         result["parent_run_id"])
    create_markdown_artifact(markdown=f"[MLflow parent run]({url})\n\n"
                                      + sweep.markdown_table(result["rows"]),
                             key=SWEEP_KEY, description=f"Head sweep, study {result['study']}")
    summary = {k: result[k] for k in ("parent_run_id", "study", "run_dir", "best", "rows")}
    summary["mlflow_url"] = url
    best = result["best"]
    if (register_best or promote) and best is not None:
        best_cfg = sweep.sweep_config(cfg).replace(**best["overrides"])
        # The gate compares the candidate with the baseline on the candidate's test set.
        summary["baseline"] = train_baseline(best_cfg, tags=flow_run_tags())["run_id"]
        version = register_model(best["run_id"], best["run_dir"], best_cfg)
        summary["version"] = version["version"]
        if promote:
            summary["decision"] = promote_model(best_cfg, version["version"])["promoted"]
    logger = get_run_logger()
    logger.info(f"sweep: parent run {url}; best {best and best['head']} "
                f"(val {best and round(best['val_accuracy'], 4)})")
    return summary
