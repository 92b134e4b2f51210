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
ROLE = "role"                         # the baseline's runs and versions: role=baseline
BASELINE_ROLE = "baseline"

# --- model-version tags ------------------------------------------------------------------
VERSION_TEST_SET = "test_set"         # the run's RUN_TEST_SET: what the accuracy is about
VERSION_ACCURACY = "test_accuracy"    # the run's test_accuracy metric, as format_accuracy writes it
VERSION_RUN_ID = "run_id"
# A blended version's parts, each measured alone on the same test set: "<part>_test_accuracy".
PART_ACCURACY = "{part}_test_accuracy"

# --- artifacts ---------------------------------------------------------------------------
MODEL_NAME_IN_RUN = "model"           # the logged model's name inside its run
HEAD_ARTIFACT = "head"                # pyfunc artifacts: the trained head (+ trained layers)
ENCODER_ARTIFACT = "encoder"          # the encoder and tokenizer as plain files
BASELINE_ARTIFACT = "baseline"        # the bag-of-words model as plain files
CONFIG_ARTIFACT = "config.json"       # the run's Config

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
