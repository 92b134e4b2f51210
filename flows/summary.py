"""What a training run came to: the flow's return value, and the same facts as log lines in
the run's Prefect logs (test accuracy, model version, the gate's decision, the MLflow link)."""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Optional

from sentiment.tracking.names import CHAMPION


class Stopwatch:
    """Wall time per stage, as the person running the pipeline sees it (Prefect overhead in)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, stage: str):
        t = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] = round(time.perf_counter() - t, 2)


def summarize(run: dict, run_url: str, version: dict, decision: Optional[dict],
              token_cache: dict, stage_seconds: dict, baseline: dict) -> dict:
    champion = (decision or {}).get("champion_after") or None
    return {
        "run_id": run["run_id"],
        "mlflow_run_url": run_url,
        "tracking_uri": run["tracking_uri"],
        "model_name": version["name"],
        "model_version": int(version["version"]),
        "model_uri": version["model_uri"],
        "test_accuracy": float(version["test_accuracy"]),
        "parts": dict(run.get("parts") or {}),  # a blended model's parts alone
        "baseline_accuracy": float(baseline["accuracy"]),
        "baseline_kind": baseline.get("kind", "tfidf"),
        "baseline_train_rows": baseline.get("train_rows"),
        "baseline_model_uri": baseline["model_uri"],
        "baseline_run_id": baseline["run_id"],
        "test_set": baseline["test_set"],
        "promotion_ran": decision is not None,
        "promoted": bool(decision and decision["promoted"]),
        "promotion_reason": decision["reason"] if decision else "promotion switched off",
        "champion_version": int(champion["version"]) if champion else None,
        "behaviour": ((decision or {}).get("compared") or {}).get("behaviour") or {},
        "slices": ((decision or {}).get("compared") or {}).get("slices") or {},
        "token_cache_hit": bool(token_cache["cache_hit"]),
        "stage_seconds": dict(stage_seconds),
        "run_dir": run["run_dir"],
    }


def parts_text(s: dict) -> str:
    """' (blend of: encoder 0.8835, bag_of_words 0.9080)' for a blended model, else ''."""
    if not s.get("parts"):
        return ""
    return " (blend of: " + ", ".join(f"{p} alone {a:.4f}" for p, a in s["parts"].items()) + ")"


def behaviour_text(s: dict) -> str:
    """'mft_negation 12% (champion 15%), ...': the behavioural failure rates the gate saw."""
    b = s.get("behaviour") or {}
    cand, champ = b.get("candidate") or {}, b.get("champion") or {}
    if cand.get("error"):
        return f"not run ({cand['error']})"
    if not cand.get("rates"):
        return "not run"
    theirs = champ.get("rates") or {}
    return ", ".join(f"{t} {r:.0%}" + (f" (champion {theirs[t]:.0%})" if t in theirs else "")
                     for t, r in cand["rates"].items())


def slices_text(s: dict) -> str:
    """'long 0.91 (champion 0.90), ...': test accuracy per slice, on the same reviews."""
    rows = (s.get("slices") or {}).get("rows") or []
    if not rows:
        return "not measured"
    def acc(x):
        return "–" if x is None else f"{x:.4f}"
    return ", ".join(f"{r['slice']} {acc(r['candidate'])}"
                     + (f" (champion {acc(r['champion'])})" if r.get("champion") is not None
                        else "") for r in rows)


def summary_lines(s: dict) -> list[str]:
    """One line per fact, for the run's logs."""
    if s["promoted"]:
        decision = f"promoted to {CHAMPION}: {s['promotion_reason']}"
    elif s["promotion_ran"]:
        decision = f"not promoted: {s['promotion_reason']}"
    else:
        decision = "not gated: promotion switched off"
    return [
        f"Test accuracy: {s['test_accuracy']:.4f}{parts_text(s)}",
        f"Baseline ({s['baseline_kind']}) accuracy: {s['baseline_accuracy']:.4f} on the same test set "
        f"({s['test_set']}); lift {s['test_accuracy'] - s['baseline_accuracy']:+.4f} "
        f"({s['baseline_model_uri']})",
        f"Model: {s['model_name']} version {s['model_version']} ({s['model_uri']})",
        f"Promotion: {decision}",
        f"Behaviour (failed per test type): {behaviour_text(s)}",
        f"Slices (test accuracy): {slices_text(s)}",
        f"MLflow run: {s['mlflow_run_url']}",
    ]
