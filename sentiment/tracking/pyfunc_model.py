"""The MLflow pyfunc model, logged as code ("models from code").

``registry.register_model`` passes this file's *path* as ``python_model``: MLflow copies the file
into the model and runs it on load, so no pickle of ours is ever written or read. The artifacts
are plain files: ``head`` (head.safetensors + head_config.json) and ``encoder`` (config,
safetensors weights, tokenizer files; a blended model's ``head`` also holds ``blend/``: the
bag-of-words part and the stacker); the bag-of-words baseline has ``baseline`` alone
(vocabulary.json, weights.safetensors, baseline_config.json). The ``sentiment`` package travels
in the model's ``code/`` folder (``code_paths``), which MLflow puts first on ``sys.path`` before
running this file, so a machine without this repository can load the model.

Input: a DataFrame with a string column ``text`` (a list of strings or one string also works).
Output: a DataFrame with ``probability`` (P(positive)) and ``label`` (``pos``/``neg``).

Bad input (no ``text`` column, a text that is not a string, an empty text, no rows, more than
``MAX_ROWS`` rows) is refused with ``InputRejected``: an MLflow INVALID_PARAMETER_VALUE error,
which `mlflow models serve` answers with HTTP 400 and the one-line reason, no stack trace.

Limits, for a server whose memory and answer time do not depend on what clients send: at most
``MAX_ROWS`` texts per request (``SENTIMENT_MAX_ROWS`` on the server changes it); the texts are
tokenized and scored ``CHUNK_ROWS`` at a time, and the freed memory is given back after each
request (``release_free_memory``), so a large request leaves no larger process behind. The
request-time budget is the scoring server's (``MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT``;
`mlflow/serve.sh` sets 120 s), which ``MAX_ROWS`` reviews fit (mlflow/README.md, "Limits").
"""

from __future__ import annotations

import os
from typing import Any, Optional

import mlflow
import mlflow.exceptions
import mlflow.protos.databricks_pb2
import pandas as pd
from mlflow.pyfunc import PythonModel

from sentiment.config import DECISION_THRESHOLD
from sentiment.tracking.names import BASELINE_ARTIFACT, ENCODER_ARTIFACT, HEAD_ARTIFACT

TEXT_COLUMN = "text"
MAX_ROWS = 2_000         # texts per request, unless SENTIMENT_MAX_ROWS says otherwise
MAX_ROWS_SETTING = "SENTIMENT_MAX_ROWS"
CHUNK_ROWS = 256         # texts tokenized and scored at a time inside one request


def max_rows() -> int:
    value = os.environ.get(MAX_ROWS_SETTING)
    try:
        return int(value) if value else MAX_ROWS
    except ValueError:
        return MAX_ROWS


class InputRejected(mlflow.exceptions.MlflowException):
    """Bad model input, as HTTP 400 with a one-line reason.

    The scoring server rewrites the message of an MlflowException raised by predict to quote
    the whole request ("Failed to predict data '<the DataFrame>'. Error: ..."), many lines for
    a batch of reviews; this message keeps the one line it was given."""

    def __init__(self, reason: str):
        self._reason = reason
        super().__init__(reason, error_code=mlflow.protos.databricks_pb2.INVALID_PARAMETER_VALUE)

    @property
    def message(self) -> str:
        return self._reason

    @message.setter
    def message(self, _value: str) -> None:
        pass  # see the class docstring


def _column(model_input: pd.DataFrame):
    if TEXT_COLUMN in model_input.columns:
        return model_input[TEXT_COLUMN]
    # A bare list or Series arrives as one unnamed column (0); a named other column is a
    # mistake the caller should hear about.
    if list(model_input.columns) == [0]:
        return model_input.iloc[:, 0]
    raise InputRejected(f"input needs a column {TEXT_COLUMN!r} of strings; got columns "
                        f"{[str(c) for c in model_input.columns][:10]}")


def as_texts(model_input) -> list[str]:
    """The texts in whatever shape pyfunc hands over (DataFrame, Series, list, dict, array),
    each checked to be a non-empty string."""
    import numpy as np
    if isinstance(model_input, pd.DataFrame):
        texts = _column(model_input).tolist()
    elif isinstance(model_input, pd.Series):
        texts = model_input.tolist()
    elif isinstance(model_input, str):
        texts = [model_input]
    elif isinstance(model_input, dict):
        if TEXT_COLUMN not in model_input:
            raise InputRejected(f"input needs a key {TEXT_COLUMN!r}; "
                                f"got {sorted(map(str, model_input))[:10]}")
        value = model_input[TEXT_COLUMN]
        texts = [value] if isinstance(value, str) else list(np.ravel(value))
    elif isinstance(model_input, np.ndarray):
        texts = model_input.ravel().tolist()
    else:
        try:
            texts = list(model_input)
        except TypeError:
            raise InputRejected(f"input must be texts; got {type(model_input).__name__}") from None
    if not texts:
        raise InputRejected("input has no texts")
    limit = max_rows()
    if len(texts) > limit:
        raise InputRejected(f"a request holds at most {limit} texts, this one {len(texts)}; "
                            f"send them in requests of {limit} or fewer")
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise InputRejected(f"{TEXT_COLUMN} must be a string; item {i} is "
                                f"{type(t).__name__} {str(t)[:40]!r}")
        if not t.strip():
            raise InputRejected(f"{TEXT_COLUMN} must not be empty; item {i} is "
                                f"{'empty' if not t else 'only whitespace'}")
    return texts


class SentimentPyfunc(PythonModel):
    def load_context(self, context) -> None:
        # The bag-of-words baseline is logged with this same file; its plain files (JSON
        # vocabulary, safetensors weights) need neither torch nor an encoder.
        if BASELINE_ARTIFACT in context.artifacts:
            from sentiment.baseline.kinds import load
            self.model = load(context.artifacts[BASELINE_ARTIFACT])  # whichever kind was saved
            return
        from sentiment.blend.blended_model import load_predictor
        # SENTIMENT_DEVICE lets a server pin the device (e.g. cpu on a shared GPU box). A
        # blended model's bag-of-words part and stacker sit in the head folder (blend/).
        self.model = load_predictor(context.artifacts[HEAD_ARTIFACT],
                                    encoder_dir=context.artifacts[ENCODER_ARTIFACT],
                                    device=os.environ.get("SENTIMENT_DEVICE", "auto"))

    # A DataFrame type hint tells MLflow the input arrives as the logged signature describes
    # (a `text` column) and asks for no schema inference of its own; without a hint MLflow
    # warns on every load.
    def predict(self, context, model_input: pd.DataFrame,
                params: Optional[dict[str, Any]] = None) -> pd.DataFrame:
        import numpy as np

        from sentiment.common.memory import release_free_memory
        threshold = float((params or {}).get("threshold", DECISION_THRESHOLD))
        texts = as_texts(model_input)
        try:
            probs = np.concatenate([
                np.asarray(self.model.predict_proba(texts[i:i + CHUNK_ROWS]), dtype=np.float64)
                for i in range(0, len(texts), CHUNK_ROWS)])
        finally:
            release_free_memory()
        return pd.DataFrame({"probability": probs,
                             "label": np.where(probs >= threshold, "pos", "neg")})


mlflow.models.set_model(SentimentPyfunc())
