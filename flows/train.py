"""The training flow `train-sentiment`: probe the registry → check folders, disk and --resume's
checkpoint → validate → warm the token cache →
train the baseline → train → evaluate → register → promote (the candidate against the champion
and the baseline, on the candidate's test set).

A schedule runs this flow; the gate then decides whether the new version becomes the champion,
and the run's logs and artifacts (validation summary, metrics, MLflow link, decision) say what
happened.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Optional

from prefect import flow, get_run_logger

from flows.artifacts import (
    publish_decision,
    publish_history,
    publish_metrics,
    publish_run_link,
    publish_settings,
    publish_validation,
)
from flows.failure import failed
from flows.mlflow_link import mlflow_run_url
from flows.params import (
    DEFAULT_PRESET,
    config_from_params,
)
from flows.run_tags import flow_run_actor, flow_run_tags, tag_flow_run
from flows.summary import Stopwatch, summarize, summary_lines
from sentiment.config import Config
from sentiment.contract.report import warning_lines
from sentiment.contract.validation import ensure_valid
from sentiment.training import run_folder
from tasks import (
    champion_history,
    check_before_work,
    evaluate_model,
    probe_registry,
    promote_model,
    register_model,
    train_baseline,
    train_model,
    validate_data,
    warm_token_cache,
)


# Results are not persisted (the summary this returns is in the logs and artifacts anyway), and
# a failure is returned as a state (flows/failure.py): nothing lands in ~/.prefect/storage.
@flow(name="train-sentiment", log_prints=True, persist_result=False)
def train_sentiment(
    preset: Literal["smoke", "quick", "full", "homework"] = DEFAULT_PRESET,
    data: Optional[str] = None,
    run_dir: Optional[str] = None,
    cache_dir: Optional[str] = None,
    encoder: Optional[str] = None,
    max_length: Optional[int] = None,
    truncation: Optional[Literal["head", "head_tail"]] = None,
    max_train: Optional[int] = None,
    max_valid: Optional[int] = None,
    max_test: Optional[int] = None,
    epochs: Optional[int] = None,
    batch_size: Optional[int] = None,
    seed: Optional[int] = None,
    device: Optional[str] = None,
    num_threads: Optional[int] = None,
    progress: Optional[bool] = None,
    tracking_uri: Optional[str] = None,
    experiment: Optional[str] = None,
    model_name: Optional[str] = None,
    min_accuracy: Optional[float] = None,
    min_improvement: Optional[float] = None,
    min_lift_over_baseline: Optional[float] = None,
    overrides: Optional[dict[str, Any]] = None,
    promote: bool = True,
    train_processes: Optional[int] = None,
) -> dict:
    """Train, register and (unless `promote` is off) gate a new model version.

    Every parameter but `preset`, `overrides`, `promote` and `train_processes` is the
    `sentiment.config.Config` field of that name, described by its help; left empty, it keeps
    the preset's value (`sentiment train --help` lists them). Returns a summary: MLflow run id and link, model
    version, test accuracy, promoted or not, token cache hit and wall time per stage.

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
        max_length: Maximum encoder input length in tokens, [CLS] and [SEP] included. Empty: the
            preset's value.
        truncation: Which tokens of a long review are kept: 'head' (the first max_length-2, as
            in the homework) or 'head_tail' (its start and its end). Empty: the preset's value.
        max_train: Stratified subset size of the training split (None: all). Empty: the preset's
            value.
        max_valid: Stratified subset size of the validation split (None: all). Empty: the
            preset's value.
        max_test: Stratified subset size of the test split (None: all). Empty: the preset's
            value.
        epochs: Training epochs. Empty: the preset's value.
        batch_size: Training batch size (reviews). Empty: the preset's value.
        seed: Seed for weights, dropout and batch order. Empty: the preset's value.
        device: Device: 'auto' (CUDA if available, else CPU), 'cpu', 'cuda' or 'cuda:N'. Empty:
            the preset's value.
        num_threads: CPU threads for torch (None: torch's default). Empty: the preset's value.
        progress: Show progress: tqdm bars on a terminal, otherwise a plain line about every 30
            s. Empty: the preset's value.
        tracking_uri: MLflow tracking URI (None: $MLFLOW_TRACKING_URI or the local SQLite store
            under mlflow/). Empty: the preset's value.
        experiment: MLflow experiment name. Empty: the preset's value.
        model_name: Registered model name in the MLflow registry. Empty: the preset's value.
        min_accuracy: Promotion gate: minimum test accuracy for the champion alias. Empty: the
            preset's value.
        min_improvement: Promotion gate: minimum test-accuracy gain over the champion on the
            candidate's test set; 0 means strictly better, a negative margin tolerates that much
            loss. Empty: the preset's value.
        min_lift_over_baseline: Promotion gate: minimum test-accuracy gain over the bag-of-words
            baseline tested on the candidate's test set; 0 means strictly better, a negative
            margin tolerates that much loss, -1 switches the rule off (no baseline needed).
            Empty: the preset's value.
        overrides: Any other Config field by name, as a JSON object, e.g. {"lr": 0.0003}.
        promote: Run the promotion gate after registering; off: register only.
        train_processes: Processes the training step runs on, on the worker: above 1, it
            trains data-parallel under torchrun (one process per GPU; on a CPU worker they
            share the cores), the batch size staying the global batch. Empty: the
            worker's SENTIMENT_TRAIN_PROCESSES (a job variable of its work pool), else 1.
    """
    params = locals()  # first statement: exactly the parameters
    try:
        return stages(config_from_params(params), promote, train_processes)
    except Exception as e:
        return failed(e)


def stages(cfg: Config, promote: bool, train_processes: Optional[int] = None) -> dict:
    """The flow's stages, in order; the summary of the run."""
    clock = Stopwatch()
    logger = get_run_logger()
    # What ran, where the run list and the run's page show it: the parameters form leaves
    # what the preset decides empty.
    tag_flow_run([f"preset:{cfg.preset}", f"encoder:{cfg.encoder}", f"model:{cfg.model_name}"])
    # The tracking store first: an unreachable server fails the run in seconds, not after
    # validation, tokenization and training.
    probe_registry(cfg)
    # Then what the config alone can say: a full disk or a --resume without a checkpoint stops
    # the run here, before validation and the baseline.
    check_before_work(cfg)
    cfg = run_folder.resolve(cfg)  # this run's own folder: concurrent runs never share one
    publish_settings(cfg)

    with clock("validate"):
        report = validate_data(cfg, str(Path(cfg.run_dir) / "validation"))
    publish_validation(report)
    for line in warning_lines(report):
        logger.warning(line)
    ensure_valid(report)  # a critical failure stops the run here: nothing cached or registered

    with clock("token_cache"):
        token_cache = warm_token_cache(cfg)
    # Seconds: the bag-of-words model on the same splits, the bar the candidate must clear.
    with clock("baseline"):
        baseline = train_baseline(cfg, tags=flow_run_tags())
    with clock("train"):
        run = train_model(cfg, report["report_dir"], tags=flow_run_tags(),
                          processes=train_processes)
    run_url = mlflow_run_url(run["tracking_uri"], run["experiment_id"], run["run_id"])
    publish_run_link(run_url, run["run_id"], run["tracking_uri"])
    logger.info(f"Training tracked in MLflow: {run_url}")

    with clock("evaluate"):
        metrics = evaluate_model(run["run_id"], run["run_dir"], cfg, baseline)
    with clock("register"):
        version = register_model(run["run_id"], run["run_dir"], cfg)
    decision = None
    if promote:
        with clock("promote"):
            decision = promote_model(cfg, version["version"], flow_run_actor())
        publish_decision(decision)
        publish_history(champion_history(cfg))
    publish_metrics(metrics, baseline, clock.seconds, token_cache)

    summary = summarize(run, run_url, version, decision, token_cache, clock.seconds, baseline)
    for line in summary_lines(summary):
        logger.info(line)
    return summary
