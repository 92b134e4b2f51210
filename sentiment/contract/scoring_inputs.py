"""The data contract for unlabeled reviews, before scoring: Great Expectations expectations on
the incoming rows (all the files a run scores, as one batch).

Critical, the run stops before scoring, in one line: the text column exists; at most
`max_blank_share` of the texts are null, empty or blank. Warnings, into the run's report:
texts within [min_text_chars, max_text_chars] (for all but 1%), at most `max_duplicate_share`
duplicate texts, no NUL characters. That the files decode (UTF-8) is checked as they are read
(``sentiment.scoring.inputs.decoded``): GE sees strings already decoded.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from sentiment.contract.expectations import BLANK_REGEX, CRITICAL, NUL_REGEX, WARNING
from sentiment.contract.ge_runner import checks_from_ge, import_gx, make_context

SPLIT = "incoming"


class ContractBreach(ValueError):
    """A critical expectation failed on the incoming reviews: one line naming it."""


def expectations(gxe, column: str, limits) -> dict[str, list]:
    """{severity: [expectation]} for the texts in `column`; `limits` is the ScoringConfig."""
    def exp(cls, name, severity, **kwargs):
        return cls(meta={"check": name}, severity=severity, **kwargs)
    keep = round(1.0 - limits.max_blank_share, 6)
    return {
        CRITICAL: [
            exp(gxe.ExpectColumnToExist, "text_present", CRITICAL, column=column,
                description=f"the text column {column!r} exists"),
            exp(gxe.ExpectColumnValuesToNotMatchRegex, "text_blank_share", CRITICAL,
                column=column, regex=BLANK_REGEX, mostly=keep,
                description=f"at most {limits.max_blank_share:.0%} null, empty or blank "
                            "texts"),
        ],
        WARNING: [
            exp(gxe.ExpectColumnValueLengthsToBeBetween, "text_length", WARNING, column=column,
                min_value=limits.min_text_chars, max_value=limits.max_text_chars, mostly=0.99,
                description=f"texts of {limits.min_text_chars} to {limits.max_text_chars} "
                            "characters (all but 1%)"),
            exp(gxe.ExpectColumnProportionOfUniqueValuesToBeBetween, "duplicate_share", WARNING,
                column=column, min_value=round(1.0 - limits.max_duplicate_share, 6),
                description=f"at most {limits.max_duplicate_share:.0%} duplicate texts"),
            exp(gxe.ExpectColumnValuesToNotMatchRegex, "text_no_nul", WARNING, column=column,
                regex=NUL_REGEX, description="no NUL characters"),
        ],
    }


def check_incoming(frame, column: str, limits) -> list[dict]:
    """Every check's outcome on `frame` (the contract's check dicts, split `incoming`)."""
    import pandas as pd
    gx, gxe = import_gx()
    # Strings only, as GE's string expectations expect: a null is an empty text here (so the
    # blank share counts both), a number its digits (the scorer reports it, row by row).
    data = pd.DataFrame({column: frame[column].map(
        lambda x: x if isinstance(x, str) else
        ("" if x is None or (isinstance(x, float) and x != x) else str(x)))}) \
        if column in frame.columns else frame
    with tempfile.TemporaryDirectory() as docs:
        context = make_context(gx, Path(docs))
        source = context.data_sources.add_pandas("scoring")
        batch = source.add_dataframe_asset(SPLIT).add_batch_definition_whole_dataframe(SPLIT)
        checks = []
        for severity, exps in expectations(gxe, column, limits).items():
            if column not in data.columns and severity != CRITICAL:
                continue
            suite = context.suites.add(gx.ExpectationSuite(name=f"scoring_{severity}"))
            for e in exps if column in data.columns else exps[:1]:
                suite.add_expectation(e)
            result = batch.get_batch(batch_parameters={"dataframe": data}).validate(
                suite, result_format={"result_format": "SUMMARY", "partial_unexpected_count": 3})
            checks += checks_from_ge(SPLIT, result)
    return checks


def breach_message(checks: list[dict]) -> str | None:
    """The one line that stops a run (the failed critical checks), or None."""
    failed = [c for c in checks if c["severity"] == CRITICAL and not c["success"]]
    if not failed:
        return None
    parts = []
    for c in failed:
        if c["name"] == "text_present":
            parts.append(f"{c['description']} (it does not)")
            continue
        observed = c["observed"]
        if isinstance(observed, dict) and "unexpected_percent" in observed:
            observed = (f"{observed['unexpected_percent']:.1f}% of "
                        f"{observed['element_count']} texts")
        parts.append(f"{c['description'] or c['name']} (observed: {observed})")
    return "incoming reviews break the data contract: " + "; ".join(parts)


def warnings(checks: list[dict]) -> list[str]:
    """One line per failed warning."""
    out = []
    for c in checks:
        if c["severity"] == WARNING and not c["success"]:
            observed = c["observed"]
            if isinstance(observed, dict) and "unexpected_percent" in observed:
                observed = f"{observed['unexpected_percent']:.1f}% outside"
            out.append(f"{c['description']} (observed: {observed})")
    return out
