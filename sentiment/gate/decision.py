"""The promotion gate as a pure function: no MLflow, no I/O, so every branch is unit-testable.

``champion.promote`` reads the accuracies from the registry, brings them onto one test set (the
candidate's: a champion measured elsewhere is re-scored there first), asks ``decide`` and moves
the alias. The gate, in order: the candidate reaches ``min_accuracy``; it beats the
bag-of-words baseline trained on the same data by ``min_lift_over_baseline`` (when a baseline
is given); it beats the champion by ``min_improvement``. A margin of 0 means strictly better.
"""

from __future__ import annotations

import math

# Accuracies come back from the registry as strings; a rounding hair must not decide a tie.
_EPS = 1e-12


def _beats(gain: float, margin: float) -> bool:
    """`gain` clears `margin`; a margin of 0 asks for strictly better, a negative one tolerates
    that much of a loss (a smoke run's open gate)."""
    return gain > _EPS if margin == 0 else gain + _EPS >= margin


def decide(candidate_acc: float, champion_acc: float | None, min_accuracy: float,
           min_improvement: float, baseline_acc: float | None = None,
           min_lift: float = 0.0) -> tuple[bool, str]:
    """(promote?, reason) for a candidate's test accuracy against the gate, the baseline and
    the champion, all measured on the same test set.

    Promote when the candidate reaches `min_accuracy`, beats the baseline (if given) by at
    least `min_lift`, and either there is no champion or it beats the champion by at least
    `min_improvement`. With a margin of 0 it must be strictly better: an equal model is no
    reason to move the alias people load, and a model that a bag-of-words one-liner matches is
    no champion.
    """
    if candidate_acc is None or not math.isfinite(candidate_acc):
        return False, f"candidate has no usable test accuracy ({candidate_acc!r})"
    if candidate_acc + _EPS < min_accuracy:
        return False, (f"test accuracy {candidate_acc:.4f} is below the minimum "
                       f"{min_accuracy:.4f}")
    if baseline_acc is not None:
        lift = candidate_acc - baseline_acc
        if not math.isfinite(baseline_acc) or not _beats(lift, min_lift):
            need = f">= {min_lift:.4f}" if min_lift > 0 else "> 0"
            return False, (f"test accuracy {candidate_acc:.4f} does not beat the bag-of-words "
                           f"baseline's {baseline_acc:.4f} on the same test set (lift "
                           f"{lift:+.4f}, {need} required)")
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


def side_by_side(test_set: str | None, candidate_acc: float | None,
                 champion: dict | None, baseline: dict | None) -> dict:
    """Candidate, champion and baseline on one test set, with the differences the gate uses.

    `champion`: {"version", "accuracy" (on this test set), "rescored", "note"} or None;
    `baseline`: {"accuracy", "run_id", "version"} or None."""
    def diff(other):
        if candidate_acc is None or other is None or other.get("accuracy") is None:
            return None
        return candidate_acc - other["accuracy"]
    return {"test_set": test_set, "candidate_accuracy": candidate_acc,
            "champion": champion, "baseline": baseline,
            "gain_over_champion": diff(champion), "lift_over_baseline": diff(baseline)}


def _signed(x) -> str:
    return "–" if x is None else f"{x:+.4f}"


def markdown_report(model_name: str, promoted: bool, reason: str, candidate: dict,
                    champion_before: dict | None, champion_after: dict | None,
                    min_accuracy: float, min_improvement: float,
                    compared: dict | None = None, min_lift: float = 0.0) -> str:
    """The decision as small markdown tables (published by the Prefect flow as an artifact):
    the alias before and after, then candidate, champion and baseline on one test set."""
    def row(label, mv):
        if not mv:
            return f"| {label} | – | – |"
        return f"| {label} | {mv['version']} | {_fmt(mv.get('accuracy'))} |"

    def margin(m):
        return "> 0 (strictly better)" if m == 0 else f">= {m:+.4f}"

    verdict = "**promoted**" if promoted else "**not promoted**"
    lines = [
        f"### Promotion gate: `{model_name}` version {candidate['version']} {verdict}",
        "",
        "| | version | test accuracy |",
        "|---|---|---|",
        row("candidate", candidate),
        row("champion before", champion_before),
        row("champion after", champion_after),
    ]
    if compared is not None:
        champ, base = compared.get("champion"), compared.get("baseline")
        champ_what = "–"
        if champ:
            champ_what = f"version {champ['version']}" + (
                " (re-scored on this test set)" if champ.get("rescored") else "")
        base_what = "–"
        if base:
            base_what = "bag-of-words" + (f" version {base['version']}" if base.get("version")
                                          else "") + (f", run `{base['run_id']}`"
                                                      if base.get("run_id") else "")
        lines += [
            "",
            f"On the candidate's test set `{compared.get('test_set') or 'unknown'}`:",
            "",
            "| | model | test accuracy | candidate's difference |",
            "|---|---|---|---|",
            f"| candidate | version {candidate['version']} | "
            f"{_fmt(compared.get('candidate_accuracy'))} | |",
            f"| champion | {champ_what} | {_fmt(champ.get('accuracy') if champ else None)} | "
            f"{_signed(compared.get('gain_over_champion'))} |",
            f"| baseline | {base_what} | {_fmt(base.get('accuracy') if base else None)} | "
            f"{_signed(compared.get('lift_over_baseline'))} (lift) |",
        ]
        if champ and champ.get("note"):
            lines += ["", f"Champion: {champ['note']}"]
    lines += [
        "",
        f"Gate: accuracy >= {min_accuracy:.4f}, a lift over the baseline of {margin(min_lift)} "
        f"and a gain over the champion of {margin(min_improvement)}.",
        "",
        f"Reason: {reason}",
    ]
    return "\n".join(lines)
