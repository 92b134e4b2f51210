"""The promotion gate as a pure function: no MLflow, no I/O, so every branch is unit-testable.

``sentiment.tracking.promotion.promote`` reads the accuracies from the registry, brings them onto
one test set (the candidate's: a champion measured elsewhere is re-scored there first, the
baseline is the one tested there), asks ``decide`` and moves the alias. The gate, in order: the
candidate reaches ``min_accuracy``; it beats the bag-of-words baseline by
``min_lift_over_baseline`` (-1 switches this rule off); it beats the champion by
``min_improvement``. Both margins mean the same: 0 strictly better, negative a tolerated loss.
"""

from __future__ import annotations

import math

# Accuracies come back from the registry as strings; a rounding hair must not decide a tie.
_EPS = 1e-12
# A lift over the baseline of -1 (a loss of the whole scale) can never fail: the rule is off and
# the gate needs no baseline. Any larger margin needs one, measured on the same test set.
BASELINE_RULE_OFF = -1.0


def beats(gain: float, margin: float) -> bool:
    """`gain` clears `margin`, the same way for the champion and the baseline: a margin of 0
    asks for strictly better, a positive one for at least that much better, a negative one
    tolerates that much of a loss."""
    return gain > _EPS if margin == 0 else gain + _EPS >= margin


def requirement(margin: float) -> str:
    """What `beats` asks of a gain, in words."""
    if margin == 0:
        return "> 0 (strictly better)"
    if margin > 0:
        return f">= {margin:+.4f}"
    return f">= {margin:+.4f} (a loss of up to {-margin:.4f} tolerated)"


def baseline_rule_on(min_lift: float) -> bool:
    return min_lift > BASELINE_RULE_OFF


# A behavioural failure rate of 1 (every case of a type failed) is always allowed: the rule is off.
BEHAVIOUR_RULE_OFF = 1.0


def behaviour_verdict(behaviour: dict | None, max_rate: float) -> tuple[bool, str]:
    """(passes?, words) for the behavioural suite's results of a candidate: {suite, rates
    {test type: failure rate}, counts {type: [failed, cases]}, examples {type: [...]}} or
    {suite, error}. Refused when any test type fails more than `max_rate` of its cases (the
    words name each such type, its rate and an example) or when the suite could not run; the
    rule is off at ``BEHAVIOUR_RULE_OFF``."""
    if max_rate >= BEHAVIOUR_RULE_OFF:
        return True, ""
    if not behaviour or behaviour.get("error") or not behaviour.get("rates"):
        why = (behaviour or {}).get("error") or "no results"
        return False, (f"the behavioural checks could not run ({why}), so the rule "
                       f"(at most {max_rate:.0%} failed per test type) cannot be checked")
    over = {t: r for t, r in behaviour["rates"].items() if r > max_rate + _EPS}
    if not over:
        worst = max(behaviour["rates"].items(), key=lambda kv: kv[1])
        return True, (f"it fails at most {max_rate:.0%} of every behavioural test type (worst: "
                      f"{worst[0]} {worst[1]:.0%})")
    parts = []
    for t, r in sorted(over.items(), key=lambda kv: -kv[1]):
        failed, n = (behaviour.get("counts") or {}).get(t, (None, None))
        example = ((behaviour.get("examples") or {}).get(t) or [None])[0]
        parts.append(f"{t} {r:.0%}" + (f" ({failed}/{n})" if n else "")
                     + (f", e.g. {example}" if example else ""))
    return False, (f"it fails more than {max_rate:.0%} of the behavioural cases of "
                   f"{len(over)} test type{'s' if len(over) > 1 else ''}: " + "; ".join(parts))


# A slice loss of 1 (the whole scale) is always allowed: the worst-slice rule is off.
SLICE_RULE_OFF = 1.0


def slice_rows(candidate: dict | None, champion: dict | None) -> list[dict]:
    """{slice, candidate, champion, difference} per slice of the candidate's test set, from
    {slice: test accuracy} of each (the champion's only when measured on the same reviews)."""
    candidate, champion = candidate or {}, champion or {}
    rows = []
    for name in list(candidate) + [s for s in champion if s not in candidate]:
        a, b = candidate.get(name), champion.get(name)
        rows.append({"slice": name, "candidate": a, "champion": b,
                     "difference": None if a is None or b is None else a - b})
    return rows


def slice_verdict(rows: list[dict], max_loss: float) -> tuple[bool, str]:
    """(passes?, words): the candidate's worst slice against the champion's on the same reviews
    may fall at most `max_loss` below it; off at ``SLICE_RULE_OFF``, and not applicable when
    the two share no slice (no champion, or none measured on these reviews)."""
    if max_loss >= SLICE_RULE_OFF:
        return True, ""
    shared = [r for r in rows if r["difference"] is not None]
    if not shared:
        return True, "no champion slice accuracies on these reviews: the slice rule not applied"
    worst = min(shared, key=lambda r: r["difference"])
    words = (f"its worst slice against the champion, {worst['slice']}, is "
             f"{worst['candidate']:.4f} against {worst['champion']:.4f} "
             f"({worst['difference']:+.4f}; a loss of at most {max_loss:.4f} allowed)")
    return -worst["difference"] <= max_loss + _EPS, words


def slices_markdown(rows: list[dict], note: str, max_loss: float) -> str:
    rule = ("off" if max_loss >= SLICE_RULE_OFF
            else f"the worst slice at most {max_loss:.4f} below the champion's")
    lines = [f"Test accuracy per slice (rule: {rule}):", ""]
    if not rows:
        return "\n".join(lines + ["No slice accuracies were logged for the candidate."])
    lines += ["| slice | candidate | champion | difference |", "|---|---|---|---|"]
    lines += [f"| {r['slice']} | {_fmt(r['candidate'])} | {_fmt(r['champion'])} | "
              f"{_signed(r['difference'])} |" for r in rows]
    if note:
        lines += ["", note]
    return "\n".join(lines)


def decide(candidate_acc: float, champion_acc: float | None, min_accuracy: float,
           min_improvement: float, baseline_acc: float | None = None,
           min_lift: float = BASELINE_RULE_OFF, behaviour: dict | None = None,
           max_behaviour_failure_rate: float = BEHAVIOUR_RULE_OFF,
           slices: list[dict] | None = None,
           max_slice_loss: float = SLICE_RULE_OFF) -> tuple[bool, str]:
    """(promote?, reason) for a candidate's test accuracy against the gate, the baseline and
    the champion, all measured on the same test set.

    Promote when the candidate reaches `min_accuracy`, beats the bag-of-words baseline by
    `min_lift` and beats the champion (if there is one) by `min_improvement`. Both margins mean
    the same (``beats``): 0 asks for strictly better (an equal model is no reason to move the
    alias people load, and a model that a bag-of-words one-liner matches is no champion), a
    negative one tolerates that much loss. Unless `min_lift` is ``BASELINE_RULE_OFF``, a
    missing baseline refuses the candidate: the lift cannot be checked. Last, the behavioural
    rule (``behaviour_verdict``) refuses a candidate that fails too many cases of one test type,
    whatever its accuracy, and the slice rule (``slice_verdict``, over `slices` from
    ``slice_rows``) one whose worst slice falls too far below the champion's. The reason names
    every rule that was applied.
    """
    promoted, reason = _decide_accuracy(candidate_acc, champion_acc, min_accuracy,
                                        min_improvement, baseline_acc, min_lift)
    if not promoted:
        return promoted, reason
    ok, words = behaviour_verdict(behaviour, max_behaviour_failure_rate)
    if not ok:
        return False, f"{reason}, but {words}"
    reason = f"{reason}; {words}" if words else reason
    ok, words = slice_verdict(slices or [], max_slice_loss)
    if not ok:
        return False, f"{reason}, but {words}"
    return True, f"{reason}; {words}" if words else reason


def _decide_accuracy(candidate_acc, champion_acc, min_accuracy, min_improvement, baseline_acc,
                     min_lift) -> tuple[bool, str]:
    if candidate_acc is None or not math.isfinite(candidate_acc):
        return False, f"candidate has no usable test accuracy ({candidate_acc!r})"
    if candidate_acc + _EPS < min_accuracy:
        return False, (f"test accuracy {candidate_acc:.4f} is below the minimum "
                       f"{min_accuracy:.4f}")
    passed = [f"test accuracy {candidate_acc:.4f} >= minimum {min_accuracy:.4f}"]
    if baseline_rule_on(min_lift):
        if baseline_acc is None or not math.isfinite(baseline_acc):
            return False, (f"test accuracy {candidate_acc:.4f} >= minimum {min_accuracy:.4f}, but "
                           "no bag-of-words baseline was tested on the same test set, so the "
                           f"lift over it ({requirement(min_lift)} required) cannot be checked")
        lift = candidate_acc - baseline_acc
        if not beats(lift, min_lift):
            return False, (f"test accuracy {candidate_acc:.4f} does not beat the bag-of-words "
                           f"baseline's {baseline_acc:.4f} on the same test set (lift "
                           f"{lift:+.4f}, {requirement(min_lift)} required)")
        passed.append(f"beats the bag-of-words baseline's {baseline_acc:.4f} by {lift:+.4f} "
                      f"({requirement(min_lift)} required)")
    if champion_acc is None or not math.isfinite(champion_acc):
        return True, ", ".join(passed) + " and there is no champion yet"
    gain = candidate_acc - champion_acc
    if not beats(gain, min_improvement):
        return False, (f"test accuracy {candidate_acc:.4f} does not beat the champion's "
                       f"{champion_acc:.4f} (gain {gain:+.4f}, {requirement(min_improvement)} "
                       "required)")
    passed.append(f"beats the champion's {champion_acc:.4f} by {gain:+.4f} "
                  f"({requirement(min_improvement)} required)")
    return True, ", ".join(passed[:-1]) + " and " + passed[-1]


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
                    compared: dict | None = None,
                    min_lift: float = BASELINE_RULE_OFF) -> str:
    """The decision as small markdown tables (published by the Prefect flow as an artifact):
    the alias before and after, then candidate, champion and baseline on one test set."""
    def row(label, mv):
        if not mv:
            return f"| {label} | – | – |"
        return f"| {label} | {mv['version']} | {_fmt(mv.get('accuracy'))} |"


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
        # A blended candidate: each of its parts alone, on the same reviews.
        for part, acc in (compared.get("candidate_parts") or {}).items():
            lines.insert(-2, f"| candidate's {part.replace('_', '-')} part alone | version "
                             f"{candidate['version']} | {_fmt(acc)} | |")
        if champ and champ.get("note"):
            lines += ["", f"Champion: {champ['note']}"]
    lines += [
        "",
        f"Gate: accuracy >= {min_accuracy:.4f}, "
        + (f"a lift over the baseline of {requirement(min_lift)} " if baseline_rule_on(min_lift)
           else "no baseline rule ")
        + f"and a gain over the champion of {requirement(min_improvement)}.",
        "",
        f"Reason: {reason}",
    ]
    return "\n".join(lines)


def _rate(result: dict | None, test: str) -> str:
    if not result or result.get("error"):
        return "–"
    rate = (result.get("rates") or {}).get(test)
    failed, n = (result.get("counts") or {}).get(test, (None, None))
    return "–" if rate is None else f"{rate:.0%} ({failed}/{n})"


def behaviour_markdown(candidate: dict | None, champion: dict | None, max_rate: float) -> str:
    """The behavioural suite's failure rate per test type, candidate beside champion, and a
    failing example of the candidate's per type."""
    rule = ("off" if max_rate >= BEHAVIOUR_RULE_OFF
            else f"at most {max_rate:.0%} failed per test type")
    lines = [f"Behavioural checks (suite {(candidate or {}).get('suite', '–')}; rule: {rule}):",
             ""]
    if candidate and candidate.get("error"):
        lines.append(f"The candidate's checks could not run: {candidate['error']}")
        return "\n".join(lines)
    types = sorted(set((candidate or {}).get("rates") or {})
                   | set((champion or {}).get("rates") or {}))
    lines += ["| test type | candidate failed | champion failed |", "|---|---|---|"]
    lines += [f"| {t} | {_rate(candidate, t)} | {_rate(champion, t)} |" for t in types]
    examples = (candidate or {}).get("examples") or {}
    if examples:
        lines += ["", "Candidate's failures, an example per test type:", ""]
        lines += [f"- {t}: {ex[0]}" for t, ex in sorted(examples.items()) if ex]
    return "\n".join(lines)
