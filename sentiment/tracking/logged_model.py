"""Logging a pyfunc model to a run and registering it: the one way both the trained model and
the bag-of-words baseline reach the registry.

The model is logged as code (``pyfunc_model.py``) with plain-file artifacts and the
``sentiment`` package as its code path: nothing pickled, and a machine without this repository
can load it.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
import tempfile
from pathlib import Path

from sentiment.config import DECISION_THRESHOLD
from sentiment.tracking.names import CHAMPION, MODEL_NAME_IN_RUN
from sentiment.tracking.provenance import RUNTIME_PACKAGES, package_version

PYFUNC_FILE = Path(__file__).with_name("pyfunc_model.py")


def pip_requirements() -> list[str]:
    # Listing them avoids MLflow's requirement inference, which imports the model and may
    # reach the network. torch's "+cpu"/"+cu124" names a wheel index, not a version.
    return [f"{p}=={v.split('+', 1)[0]}" for p in RUNTIME_PACKAGES if (v := package_version(p))]


def export_code(dest: Path) -> Path:
    """A clean copy of the `sentiment` package for code_paths (no caches, no bytecode)."""
    pkg = Path(__file__).resolve().parents[1]  # the `sentiment` package
    target = dest / pkg.name
    shutil.copytree(pkg, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return target


def model_signature():
    """text -> probability, label, with a `threshold` parameter; and the input example.

    The `text` column is declared as optional and of any type on purpose: the model itself
    checks it (pyfunc_model.InputRejected: a missing column, a text that is not a string or is
    empty, each refused in one line). A `string` column would make the scoring server cast
    numbers to strings ({"inputs": [1, 2]} scored as "1", "2"), and a required one would be
    refused by MLflow's schema check with a message quoting the whole request."""
    import pandas as pd
    from mlflow.models import ModelSignature, infer_signature
    from mlflow.types.schema import AnyType, ColSpec, Schema

    from sentiment.model.predict import EXAMPLES
    example = pd.DataFrame({"text": EXAMPLES})
    output = pd.DataFrame({"probability": [0.1, 0.9], "label": ["neg", "pos"]})
    inferred = infer_signature(example, output, params={"threshold": DECISION_THRESHOLD})
    inputs = Schema([ColSpec(AnyType(), "text", required=False)])
    return ModelSignature(inputs=inputs, outputs=inferred.outputs, params=inferred.params), example


def log_pyfunc(mlflow, run_id: str, artifacts: dict[str, str], requirements: list[str], *,
               metadata: dict, step: int | None = None, tags: dict | None = None,
               name: str = MODEL_NAME_IN_RUN):
    """Log the pyfunc model with `artifacts` (name -> local folder) to run `run_id`; MLflow's
    ModelInfo. The code folder is a clean copy of the package; `name` is the model's name in
    the run and in the experiment's Models tab."""
    signature, example = model_signature()
    with tempfile.TemporaryDirectory() as tmp:
        code_dir = export_code(Path(tmp) / "code")
        # log_model loads the model once to check the input example; that puts the temporary
        # code folder on sys.path, which must not outlive this call.
        saved_path = list(sys.path)
        active = mlflow.active_run()
        opened = (contextlib.nullcontext() if active and active.info.run_id == run_id
                  else mlflow.start_run(run_id=run_id, log_system_metrics=False))
        try:
            with opened:
                return mlflow.pyfunc.log_model(
                    name=name, python_model=str(PYFUNC_FILE), artifacts=artifacts,
                    code_paths=[str(code_dir)], signature=signature, input_example=example,
                    pip_requirements=requirements, step=step or 0, tags=tags,
                    metadata=metadata)
        finally:
            sys.path[:] = saved_path


def link_version(client, model_id: str, name: str, version) -> None:
    """What mlflow.register_model records too: the logged model's page lists its versions."""
    from mlflow.utils.mlflow_tags import MLFLOW_MODEL_VERSIONS
    client.set_logged_model_tags(model_id, {MLFLOW_MODEL_VERSIONS: json.dumps(
        [{"name": name, "version": str(version)}])})


def model_description(name: str) -> str:
    return ("IMDB review sentiment: a BERT-family encoder (frozen or fine-tuned) with a BiGRU "
            "head. Input: a `text` column; output: `probability` (P(positive)) and `label`. "
            f"Load the approved model with mlflow.pyfunc.load_model('models:/{name}@{CHAMPION}').")


def ensure_registered_model(client, name: str, description: str | None = None,
                            tags: dict | None = None) -> None:
    """Create the registered model with its description when it is missing, quietly
    (mlflow.register_model would announce that it "already exists" on every call)."""
    from mlflow.exceptions import MlflowException
    try:
        client.get_registered_model(name)
        return
    except MlflowException:
        pass
    try:
        client.create_registered_model(name, tags=tags,
                                       description=description or model_description(name))
    except MlflowException:
        pass  # created concurrently


