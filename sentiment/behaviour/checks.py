"""Run a model over the behavioural suite: the failure rate of each test type, with examples.

The model is any callable from a list of reviews to P(positive) (``SentimentModel``'s and the
registry's ``predict_proba``); every distinct review is scored once, in one call.
"""

from __future__ import annotations

import numpy as np

from sentiment.behaviour.suite import Suite
from sentiment.config import DECISION_THRESHOLD

# Failing cases kept per test type for the decision's reason and the table.
EXAMPLES = 3


def _failed(case, p: dict, threshold: float, tolerance: float) -> bool:
    if case.kind == "mft":
        return int(p[case.text] >= threshold) != case.label
    if case.kind == "inv":
        return (p[case.text] >= threshold) != (p[case.edited] >= threshold)
    moved = p[case.edited] - p[case.text]
    return moved * case.direction < -tolerance


def _show(case, p: dict) -> str:
    if case.kind == "mft":
        return f"{case.text!r} (P(pos) {p[case.text]:.2f}, expected {'pos' if case.label else 'neg'})"
    return (f"{case.text!r} → {case.edited!r} (P(pos) {p[case.text]:.2f} → "
            f"{p[case.edited]:.2f})")


def run_suite(predict_proba, suite: Suite, threshold: float = DECISION_THRESHOLD) -> dict:
    """{suite, rates {type: failure rate}, counts {type: [failed, cases]}, examples {type:
    [up to EXAMPLES failing cases, in words]}, rows (one per case, for a table), failure_rate
    (over all cases)}."""
    texts = list(dict.fromkeys(t for c in suite.cases for t in (c.text, c.edited) if t))
    probs = np.asarray(predict_proba(texts), dtype=np.float64)
    p = dict(zip(texts, probs.tolist()))
    counts: dict[str, list[int]] = {}
    examples: dict[str, list[str]] = {}
    rows = []
    for case in suite.cases:
        bad = _failed(case, p, threshold, suite.tolerance)
        counts.setdefault(case.test, [0, 0])
        counts[case.test][0] += int(bad)
        counts[case.test][1] += 1
        if bad and len(examples.setdefault(case.test, [])) < EXAMPLES:
            examples[case.test].append(_show(case, p))
        rows.append({"test": case.test, "text": case.text, "edited": case.edited or "",
                     "expected": case.label if case.kind == "mft" else
                     ("same label" if case.kind == "inv" else
                      ("not lower" if case.direction > 0 else "not higher")),
                     "p_text": round(p[case.text], 4),
                     "p_edited": round(p[case.edited], 4) if case.edited else None,
                     "failed": bad})
    failed = sum(c[0] for c in counts.values())
    return {"suite": suite.version, "rates": {t: c[0] / c[1] for t, c in sorted(counts.items())},
            "counts": dict(sorted(counts.items())),
            "examples": {t: e for t, e in examples.items() if e}, "rows": rows,
            "failure_rate": failed / max(1, len(suite.cases))}
