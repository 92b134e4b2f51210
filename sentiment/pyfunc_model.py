"""The MLflow pyfunc model, logged as code ("models from code").

``registry.register_model`` passes this file's *path* as ``python_model``: MLflow copies the file
into the model and runs it on load, so no pickle of ours is ever written or read. The artifacts
are plain files: ``head`` (head.safetensors + head_config.json) and ``encoder`` (config,
safetensors weights, tokenizer files); the bag-of-words baseline has ``baseline`` alone
(vocabulary.json, weights.safetensors, baseline_config.json). The ``sentiment`` package travels
in the model's ``code/`` folder (``code_paths``), which MLflow puts first on ``sys.path`` before
running this file, so a machine without this repository can load the model.

Input: a DataFrame with a string column ``text`` (a list of strings or one string also works).
Output: a DataFrame with ``probability`` (P(positive)) and ``label`` (``pos``/``neg``).
"""

from __future__ import annotations

import os
from typing import Any, Optional

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel

HEAD_ARTIFACT = "head"
ENCODER_ARTIFACT = "encoder"
BASELINE_ARTIFACT = "baseline"
TEXT_COLUMN = "text"
DEFAULT_THRESHOLD = 0.5


def as_texts(model_input) -> list[str]:
    """The texts in whatever shape pyfunc hands over (DataFrame, Series, list, dict, array)."""
    import numpy as np
    if isinstance(model_input, pd.DataFrame):
        if TEXT_COLUMN in model_input.columns:
            col = model_input[TEXT_COLUMN]
        elif model_input.shape[1] == 1:
            col = model_input.iloc[:, 0]
        else:
            raise ValueError(f"input needs a column {TEXT_COLUMN!r}; got {list(model_input.columns)}")
        return col.tolist()
    if isinstance(model_input, pd.Series):
        return model_input.tolist()
    if isinstance(model_input, str):
        return [model_input]
    if isinstance(model_input, dict):
        value = model_input.get(TEXT_COLUMN)
        if value is None:
            raise ValueError(f"input needs a key {TEXT_COLUMN!r}; got {sorted(model_input)}")
        return [value] if isinstance(value, str) else list(value)
    if isinstance(model_input, np.ndarray):
        return model_input.ravel().tolist()
    return list(model_input)


class SentimentPyfunc(PythonModel):
    def load_context(self, context) -> None:
        # The bag-of-words baseline is logged with this same file; its plain files (JSON
        # vocabulary, safetensors weights) need neither torch nor an encoder.
        if BASELINE_ARTIFACT in context.artifacts:
            from sentiment.baseline import load
            self.model = load(context.artifacts[BASELINE_ARTIFACT])
            return
        from sentiment.predict import SentimentModel
        # SENTIMENT_DEVICE lets a server pin the device (e.g. cpu on a shared GPU box).
        self.model = SentimentModel.load(context.artifacts[HEAD_ARTIFACT],
                                         encoder_dir=context.artifacts[ENCODER_ARTIFACT],
                                         device=os.environ.get("SENTIMENT_DEVICE", "auto"))

    # A DataFrame type hint tells MLflow the input arrives as the logged signature describes
    # (a `text` column) and asks for no schema inference of its own; without a hint MLflow
    # warns on every load.
    def predict(self, context, model_input: pd.DataFrame,
                params: Optional[dict[str, Any]] = None) -> pd.DataFrame:
        import numpy as np
        threshold = float((params or {}).get("threshold", DEFAULT_THRESHOLD))
        probs = self.model.predict_proba(as_texts(model_input)).astype(np.float64)
        return pd.DataFrame({"probability": probs,
                             "label": np.where(probs >= threshold, "pos", "neg")})


mlflow.models.set_model(SentimentPyfunc())
