"""Every name the project writes into MLflow, defined once: run tags, version tags, artifact
names and the alias. Readers (the gate, the UI screenshots, tests) use these constants too."""

from __future__ import annotations

# --- the registry ------------------------------------------------------------------------
CHAMPION = "champion"                 # the alias that people load: models:/NAME@champion

# --- run tags ----------------------------------------------------------------------------
DESCRIPTION = "mlflow.note.content"   # the run's one-line description in the UI
SOURCE_NAME = "mlflow.source.name"    # a run started by a flow points its Source at the flow run
SOURCE_TYPE = "mlflow.source.type"
GIT_COMMIT = "mlflow.source.git.commit"
FLOW_RUN_URL = "prefect.flow_run_url"
RUN_TEST_SET = "data.test_set"        # fingerprint of the test split (texts and labels)
DATA_FINGERPRINT = "data_fingerprint"  # fingerprint of the whole data source
DATA_SOURCE = "data.source"
PACKAGES = "packages"                 # "python 3.12.3, mlflow 3.17.0, ...": one tag, not one each
LIFT_OVER_BASELINE = "lift_over_baseline"  # metric: test accuracy minus the baseline's, same reviews
ROLE = "role"                         # the baseline's runs and versions: role=baseline
BASELINE_ROLE = "baseline"

# --- model-version tags ------------------------------------------------------------------
VERSION_TEST_SET = "test_set"         # the run's RUN_TEST_SET: what the accuracy is about
VERSION_ACCURACY = "test_accuracy"    # the run's test_accuracy metric, as format_accuracy writes it
VERSION_RUN_ID = "run_id"
# A version's description: the latest gate decision above this line, the registration's below.
DESCRIPTION_SEPARATOR = "\n\n---\n\n"
# A blended version's parts, each measured alone on the same test set: "<part>_test_accuracy".
PART_ACCURACY = "{part}_test_accuracy"

# --- artifacts ---------------------------------------------------------------------------
MODEL_NAME_IN_RUN = "sentiment-model"  # the logged model's name inside its run
BASELINE_MODEL_NAME_IN_RUN = "baseline-model"  # the baseline's, distinct in the Models tab
HEAD_ARTIFACT = "head"                # pyfunc artifacts: the trained head (+ trained layers)
ENCODER_ARTIFACT = "encoder"          # the encoder and tokenizer as plain files
BASELINE_ARTIFACT = "baseline"        # the bag-of-words model as plain files
CONFIG_ARTIFACT = "config.json"       # the run's Config
DATA_PROFILE_ARTIFACT = "data_profile.json"  # the training data's drift profile, on the model's run
DRIFT_ARTIFACT = "drift_report.json"  # a scoring run's drift report

# The experiment's description (its page's first lines): where to look.
EXPERIMENT_DESCRIPTION = (
    "IMDB review sentiment. Each pipeline run leaves two runs here: the model's "
    "(`<preset>-<encoder>-...`) and its bag-of-words baseline's (`<preset>-baseline-...`, tag "
    "`role=baseline`), both tested on the same reviews (tag `data.test_set`). A run's "
    "description says its test accuracy and its lift over the baseline; its artifacts hold "
    "`model_card.md`, `evaluation/` (plots, `comparison.png`) and `validation/summary.html`. "
    "The gate's decision opens each version's page under Models: `imdb-sentiment`.")

# Test accuracy per slice of the test set (sentiment.evaluation.slices), metric and table.
SLICE_METRIC = "test_slice_{slice}_accuracy"
SLICE_TABLE = "evaluation/slices.json"

# The test metrics every model's run logs as test_<name>.
TEST_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss", "ece")


def format_accuracy(acc: float) -> str:
    """An accuracy as a tag value: every digit of the float, so reading it back is exact."""
    return repr(float(acc))

# --- champion history --------------------------------------------------------------------
# Every file of a version's model folder and its SHA-256, as JSON {relative path: hex}, recorded
# at registration; a rollback refuses a version whose files no longer match.
VERSION_FILES_SHA256 = "files_sha256"
# The decisions that move the alias, as the numbered promotion records' `decision` field.
PROMOTED = "promoted"
ROLLED_BACK = "rolled back"

# --- behavioural checks ------------------------------------------------------------------
# On a version: the suite its results are for, and the results as JSON (rates, counts and
# examples per test type); on its run: one metric per test type and the table of cases.
VERSION_BEHAVIOUR_SUITE = "behaviour.suite"
VERSION_BEHAVIOUR = "behaviour.results"
BEHAVIOUR_METRIC = "behaviour_{test}_failure_rate"
BEHAVIOUR_TABLE = "behaviour/cases.json"
