"""Incoming reviews against a training profile: per feature the population stability index
(PSI, on the profile's decile bins) and a two-sample test (Kolmogorov-Smirnov against the
profile's sample; a binomial test for a share), and the same for the model's scores against
its validation scores and for the predicted-positive share.

A feature drifts when the shift is both large (PSI >= PSI_DRIFT) and unlikely to be chance
(p < ALPHA): PSI alone flags small batches (its expected value under no shift grows like
bins / rows), a test alone flags tiny shifts in large batches.
"""

from __future__ import annotations

from typing import Optional

from sentiment.drift.features import compute

# The common reading of PSI: < 0.1 no real change, 0.1-0.25 a moderate one, >= 0.25 a major one.
PSI_DRIFT = 0.25
ALPHA = 0.01
MIN_ROWS = 20   # fewer scorable reviews: nothing is tested, and the report says so
_EPS = 1e-4


def psi(expected: list[float], actual: list[float]) -> float:
    import numpy as np
    e = np.clip(np.asarray(expected, dtype=float), _EPS, None)
    a = np.clip(np.asarray(actual, dtype=float), _EPS, None)
    return float(np.sum((a - e) * np.log(a / e)))


def compare_feature(name: str, ref: dict, values) -> dict:
    """One feature of incoming `values` against its profile entry `ref`."""
    import numpy as np
    from scipy import stats
    v = np.asarray(values, dtype=float)
    counts = np.bincount(np.searchsorted(ref["edges"], v, side="left"),
                         minlength=len(ref["edges"]) + 1)
    value = psi(ref["proportions"], counts / len(v))
    if ref["kind"] == "share":
        p_value = float(stats.binomtest(int(v.sum()), len(v), min(max(ref["mean"], _EPS),
                                                                   1 - _EPS)).pvalue)
        test = "binomial"
    else:
        p_value = float(stats.ks_2samp(v, np.asarray(ref["sample"], dtype=float)).pvalue)
        test = "ks"
    return {"feature": name, "psi": round(value, 4), "p_value": p_value, "test": test,
            "reference_mean": ref["mean"], "incoming_mean": float(v.mean()),
            "reference_p50": ref["p50"], "incoming_p50": float(np.quantile(v, 0.5)),
            "drift": bool(value >= PSI_DRIFT and p_value < ALPHA)}


def _usable(texts) -> list[str]:
    return [t for t in texts if isinstance(t, str) and t.strip()]


def input_drift(profile: Optional[dict], texts, tokenizer) -> dict:
    """The incoming texts' features against the profile: {checked, reason, rows, features:
    [...], drifted: [names]}."""
    if not profile:
        return {"checked": False, "reason": "this model version has no training profile",
                "rows": 0, "features": [], "drifted": []}
    texts = _usable(texts)
    if len(texts) < MIN_ROWS:
        return {"checked": False, "rows": len(texts), "features": [], "drifted": [],
                "reason": f"{len(texts)} scorable reviews, fewer than {MIN_ROWS}"}
    values = compute(texts, tokenizer, profile["max_length"], set(profile["vocabulary"]))
    rows = [compare_feature(k, profile["features"][k], v) for k, v in values.items()
            if k in profile["features"]]
    return {"checked": True, "rows": len(texts), "features": rows,
            "drifted": [r["feature"] for r in rows if r["drift"]]}


def prediction_drift(profile: Optional[dict], probabilities, threshold: float) -> dict:
    """The scores against the validation split's: the score distribution and the
    predicted-positive share."""
    import numpy as np
    from scipy import stats
    p = np.asarray([x for x in probabilities if x is not None], dtype=float)
    val = (profile or {}).get("validation")
    if not val or len(p) < MIN_ROWS:
        reason = "no validation scores in the profile" if not val else \
            f"{len(p)} scores, fewer than {MIN_ROWS}"
        return {"checked": False, "reason": reason, "features": [], "drifted": []}
    rows = [compare_feature("score", val["score"], p)]
    share = float((p >= threshold).mean())
    ref = min(max(val["positive_share"], _EPS), 1 - _EPS)
    p_value = float(stats.binomtest(int((p >= threshold).sum()), len(p), ref).pvalue)
    value = psi([1 - ref, ref], [1 - share, share])
    rows.append({"feature": "positive_share", "psi": round(value, 4), "p_value": p_value,
                 "test": "binomial", "reference_mean": val["positive_share"],
                 "incoming_mean": share, "reference_p50": None, "incoming_p50": None,
                 "drift": bool(value >= PSI_DRIFT and p_value < ALPHA)})
    return {"checked": True, "features": rows,
            "drifted": [r["feature"] for r in rows if r["drift"]]}


def summary_line(report: dict) -> str:
    """One line: which features drifted, by how much."""
    inp, pred = report.get("input", {}), report.get("prediction", {})
    if not inp.get("checked") and not pred.get("checked"):
        return f"Drift: not checked ({inp.get('reason') or pred.get('reason')})"
    drifted = [r for part in (inp, pred) for r in part.get("features", []) if r["drift"]]
    if not drifted:
        worst = max((r["psi"] for part in (inp, pred) for r in part.get("features", [])),
                    default=0.0)
        return f"Drift: none against the training profile (largest PSI {worst:.3f})"
    shown = ", ".join(f"{r['feature']} (PSI {r['psi']:.2f}, mean {r['reference_mean']:.3g} -> "
                      f"{r['incoming_mean']:.3g})" for r in drifted)
    return f"Drift: {shown} [{report.get('setting', 'warn')}]"
