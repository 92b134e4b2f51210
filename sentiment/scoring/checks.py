"""What every scoring job checks before the model sees a review, and reports after: the data
contract on the incoming texts (``sentiment.contract.scoring_inputs``), their drift against
the model's training profile, and, once scored, the drift of the scores themselves
(``sentiment.drift.compare``).
"""

from __future__ import annotations

import time
from typing import Optional


class DriftStop(ValueError):
    """Drift with `drift=fail`: one line naming the drifted features."""


def load_tokenizer(profile: dict):
    from sentiment.encoding import encoders
    return encoders.load_tokenizer(encoders.resolve(profile["encoder"],
                                                    profile.get("encoder_revision")))


def checks_before_scoring(cfg, texts: list, profile: Optional[dict],
                          tokenizer=None) -> dict:
    """The data contract on `texts`, then their drift against `profile`; raises ContractBreach
    or DriftStop (one line each) when the run must stop. {contract: [checks], warnings:
    [lines], drift: {setting, input, seconds}}."""
    import pandas as pd

    from sentiment.contract.scoring_inputs import (
        ContractBreach,
        breach_message,
        check_incoming,
        warnings,
    )
    from sentiment.drift.compare import input_drift
    checks = check_incoming(pd.DataFrame({cfg.text_column: pd.Series(texts, dtype=object)}),
                            cfg.text_column, cfg)
    stop = breach_message(checks)
    if stop:
        raise ContractBreach(stop)
    t = time.perf_counter()
    if profile and tokenizer is None:
        tokenizer = load_tokenizer(profile)
    drift = {"setting": cfg.drift, "input": input_drift(profile, texts, tokenizer)}
    drift["seconds"] = round(time.perf_counter() - t, 3)
    if cfg.drift == "fail" and drift["input"]["drifted"]:
        from sentiment.drift.compare import summary_line
        raise DriftStop(f"incoming reviews drift from the training data, so nothing was "
                        f"scored (drift=fail): {summary_line(drift).removeprefix('Drift: ')}")
    return {"contract": checks, "warnings": warnings(checks), "drift": drift}


def with_prediction_drift(checks: dict, profile: Optional[dict], probabilities,
                          threshold: float) -> dict:
    from sentiment.drift.compare import prediction_drift
    t = time.perf_counter()
    checks["drift"]["prediction"] = prediction_drift(profile, probabilities, threshold)
    checks["drift"]["seconds"] = round(checks["drift"]["seconds"] + time.perf_counter() - t, 3)
    return checks
