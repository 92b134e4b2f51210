"""The promotion gate as a pure function: no MLflow, no I/O, so every branch is unit-testable.

``registry.promote`` reads the accuracies from the registry, asks ``decide`` and moves the alias.
"""

from __future__ import annotations

import math

CHAMPION = "champion"
# Accuracies come back from the registry as strings; a rounding hair must not decide a tie.
_EPS = 1e-12


def decide(candidate_acc: float, champion_acc: float | None, min_accuracy: float,
           min_improvement: float) -> tuple[bool, str]:
    """(promote?, reason) for a candidate's test accuracy against the gate and the champion.

    Promote when the candidate reaches `min_accuracy` and either there is no champion or it beats
    the champion by at least `min_improvement`. With `min_improvement` 0 it must be strictly
    better: an equal model is no reason to move the alias people load.
    """
    if candidate_acc is None or not math.isfinite(candidate_acc):
        return False, f"candidate has no usable test accuracy ({candidate_acc!r})"
    if candidate_acc + _EPS < min_accuracy:
        return False, (f"test accuracy {candidate_acc:.4f} is below the minimum "
                       f"{min_accuracy:.4f}")
    if champion_acc is None or not math.isfinite(champion_acc):
        return True, (f"test accuracy {candidate_acc:.4f} >= minimum {min_accuracy:.4f} "
                      "and there is no champion yet")
    gain = candidate_acc - champion_acc
    if min_improvement > 0:
        if gain + _EPS >= min_improvement:
            return True, (f"test accuracy {candidate_acc:.4f} beats the champion's "
                          f"{champion_acc:.4f} by {gain:+.4f} (>= {min_improvement:.4f} required)")
        return False, (f"test accuracy {candidate_acc:.4f} vs the champion's {champion_acc:.4f}: "
                       f"gain {gain:+.4f} is below the required {min_improvement:.4f}")
    if gain > _EPS and gain >= min_improvement:
        return True, (f"test accuracy {candidate_acc:.4f} beats the champion's "
                      f"{champion_acc:.4f} ({gain:+.4f})")
    return False, (f"test accuracy {candidate_acc:.4f} does not beat the champion's "
                   f"{champion_acc:.4f} ({gain:+.4f})")


def _fmt(acc) -> str:
    return "–" if acc is None else f"{acc:.4f}"


def markdown_report(model_name: str, promoted: bool, reason: str, candidate: dict,
                    champion_before: dict | None, champion_after: dict | None,
                    min_accuracy: float, min_improvement: float) -> str:
    """The decision as a small markdown table (published by the Prefect flow as an artifact)."""
    def row(label, mv):
        if not mv:
            return f"| {label} | – | – |"
        return f"| {label} | {mv['version']} | {_fmt(mv.get('accuracy'))} |"

    verdict = "**promoted**" if promoted else "**not promoted**"
    return "\n".join([
        f"### Promotion gate: `{model_name}` version {candidate['version']} {verdict}",
        "",
        "| | version | test accuracy |",
        "|---|---|---|",
        row("candidate", candidate),
        row(f"{CHAMPION} before", champion_before),
        row(f"{CHAMPION} after", champion_after),
        "",
        f"Gate: accuracy >= {min_accuracy:.4f} and a gain over the champion of "
        + (f">= {min_improvement:.4f}" if min_improvement > 0 else "> 0 (strictly better)") + ".",
        "",
        f"Reason: {reason}",
    ])
