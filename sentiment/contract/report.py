"""The validation report: statistics, the train/test overlap, the summary and the failure message.

The statistics (rows, duplicate texts, HTML share, positive share) are read off the checks'
observations; the overlap of train and test is computed here with pandas, since GE validates
one batch at a time. ``summary_markdown`` is the human-readable ``summary.md``,
``summary_html`` the same as one self-contained page (inline CSS, no scripts, no links: it
renders inside MLflow's sandboxed artifact view, where GE's Data Docs lose their styles);
``failure_message`` names every failed critical check in one line.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Optional

from sentiment.contract.expectations import CRITICAL, custom_check

EXAMPLES = 3  # examples shown per check
_EXAMPLE_CHARS = 70


def stats(frames: dict, checks: list[dict]) -> dict:
    """Rows, duplicate texts, HTML share and positive share per split, from the checks."""
    by_name = {(c["split"], c["name"]): c for c in checks}
    out: dict[str, Any] = {"rows": {s: int(len(f)) for s, f in frames.items()},
                           "duplicate_rows": {}, "duplicate_extra_copies": {},
                           "html_share": {}, "positive_share": {}}
    html_rows = html_total = 0
    for split, frame in frames.items():
        unique = by_name.get((split, "text_unique"))
        if unique and isinstance(unique["observed"], dict):
            # GE counts every row that shares its text; the extra copies are what dedup removes.
            out["duplicate_rows"][split] = unique["observed"]["unexpected_count"]
            out["duplicate_extra_copies"][split] = int(frame["text"].duplicated().sum())
        html = by_name.get((split, "text_html_tags"))
        if html and isinstance(html["observed"], dict):
            n, total = html["observed"]["unexpected_count"], html["observed"]["element_count"]
            out["html_share"][split] = n / total if total else 0.0
            html_rows, html_total = html_rows + n, html_total + total
        balance = by_name.get((split, "label_balance"))
        if balance and not isinstance(balance["observed"], str):
            out["positive_share"][split] = balance["observed"]
    if html_total:
        out["html_share"]["all"] = html_rows / html_total
    return out


def overlap_check(train, test, stats: dict) -> dict:
    """The ``train_test_overlap`` check; adds its counts to ``stats``."""
    from pandas.api.types import is_string_dtype

    if "text" not in train.columns or "text" not in test.columns \
            or not (is_string_dtype(train["text"]) and is_string_dtype(test["text"])):
        return custom_check("train_test_overlap", "train/test", True,
                            "not computed: a split has no text column")
    shared = set(train["text"].dropna()) & set(test["text"].dropna())
    in_train = train["text"].isin(shared)
    in_test = test["text"].isin(shared)
    stats["train_test_overlap"] = {"texts": len(shared), "train_rows": int(in_train.sum()),
                                   "test_rows": int(in_test.sum())}
    rows = in_test[in_test].index[:EXAMPLES]
    examples = [f"test row {row}: {short(test['text'].iat[row])}" for row in rows]
    return custom_check("train_test_overlap", "train/test", not shared,
                        stats["train_test_overlap"], examples)


def summary_markdown(result: Any) -> str:
    """``summary.md``: the verdict, one table row per check, the statistics and the timings."""
    verdict = "PASSED" if result.success else "FAILED"
    if result.success and result.warnings:
        verdict = "PASSED with warnings"
    lines = [f"# Data validation {verdict}: {result.data}", ""]
    lines.append("Critical failures: " + (", ".join(result.critical_failures) or "none"))
    lines.append("Warnings: " + (", ".join(result.warnings) or "none"))
    lines += ["", "| split | check | expects | severity | result | observed | examples |",
              "|---|---|---|---|---|---|---|"]
    for c in result.checks:
        cells = [c["split"], c["name"], c["description"], c["severity"],
                 "pass" if c["success"] else "FAIL",
                 _observed_text(c["observed"]),
                 # Code spans, so that a review's own "<br />" shows as text, not as a break.
                 "<br>".join("`" + e.replace("`", "'") + "`" for e in c["examples"])]
        lines.append("| " + " | ".join(_cell(x) for x in cells) + " |")
    s = result.stats
    lines += ["", "## Statistics", ""]
    if s.get("rows"):
        lines.append("- rows: " + ", ".join(f"{k} {v}" for k, v in s["rows"].items()))
    if s.get("duplicate_extra_copies"):
        lines.append("- duplicate texts (extra copies / rows sharing a text): " + ", ".join(
            f"{k} {v} / {s['duplicate_rows'][k]}" for k, v in s["duplicate_extra_copies"].items()))
    if "train_test_overlap" in s:
        o = s["train_test_overlap"]
        lines.append(f"- train/test overlap: {o['texts']} distinct texts "
                     f"({o['train_rows']} train rows, {o['test_rows']} test rows)")
    if s.get("html_share"):
        lines.append("- share with HTML tags: " + ", ".join(
            f"{k} {v:.1%}" for k, v in s["html_share"].items()))
    if s.get("positive_share"):
        lines.append("- positive share: " + ", ".join(
            f"{k} {float(v):.3f}" for k, v in s["positive_share"].items()))
    t = result.timings
    lines.append("- seconds: " + ", ".join(f"{k} {v:.3f}" for k, v in t.items()))
    lines += ["", "Files: summary.md, summary.json, ge_results.json (GE's full results), "
                  "data_docs/index.html (GE Data Docs).", ""]
    return "\n".join(lines)


HTML_STYLE = """body{font:14px/1.4 system-ui,sans-serif;margin:16px;color:#1f2328}
table{border-collapse:collapse;margin:8px 0}th,td{border:1px solid #d0d7de;padding:4px 8px;
text-align:left;vertical-align:top}th{background:#f6f8fa}.pass{color:#1a7f37}
.fail{color:#cf222e;font-weight:600}.warn{color:#9a6700;font-weight:600}
code{font-size:12px;background:#f6f8fa;padding:1px 3px}h1{font-size:20px}h2{font-size:16px}"""


def summary_html(result: Any) -> str:
    """``summary.html``: what ``summary.md`` says, as a page that needs nothing else."""
    from html import escape
    verdict = "PASSED" if result.success else "FAILED"
    if result.success and result.warnings:
        verdict = "PASSED with warnings"
    rows = []
    for c in result.checks:
        if c["success"]:
            outcome = '<span class="pass">pass</span>'
        else:
            outcome = f'<span class="{"fail" if c["severity"] == CRITICAL else "warn"}">FAIL</span>'
        examples = "<br>".join(f"<code>{escape(e)}</code>" for e in c["examples"])
        rows.append("<tr>" + "".join(f"<td>{x}</td>" for x in (
            escape(c["split"]), escape(c["name"]), escape(c["description"]),
            escape(c["severity"]), outcome, escape(_observed_text(c["observed"])), examples))
            + "</tr>")
    # The statistics as summary.md words them: the lines after its "## Statistics" heading.
    md = summary_markdown(result)
    stats_lines = md.split("## Statistics", 1)[-1].strip().splitlines()
    items = "".join(f"<li>{escape(line[2:])}</li>" for line in stats_lines if line.startswith("- "))
    head = "".join(f"<th>{h}</th>" for h in ("split", "check", "expects", "severity", "result",
                                             "observed", "examples"))
    return "\n".join([
        "<!DOCTYPE html>", '<html><head><meta charset="utf-8">',
        f"<title>Data validation {verdict}</title><style>{HTML_STYLE}</style></head><body>",
        f"<h1>Data validation {verdict}: {escape(str(result.data))}</h1>",
        f"<p>Critical failures: {escape(', '.join(result.critical_failures) or 'none')}<br>"
        f"Warnings: {escape(', '.join(result.warnings) or 'none')}</p>",
        f"<table><tr>{head}</tr>{''.join(rows)}</table>",
        f"<h2>Statistics</h2><ul>{items}</ul>",
        "<p>Files beside this one: summary.md, summary.json, ge_results.json (GE's full "
        "results) and data_docs/ (GE's Data Docs: download the folder and open "
        "data_docs/index.html in a browser).</p>",
        "</body></html>", ""])


def failure_message(result: dict) -> str:
    """One line for a result dict: the failed critical checks with what each observed."""
    if result["success"]:
        return f"data validation passed for {result['data']}"
    details = [_describe(c) for c in result["checks"]
               if c["severity"] == CRITICAL and not c["success"]]
    return (f"data validation failed for {result['data']}: "
            f"{len(result['critical_failures'])} critical expectation(s) failed: "
            + "; ".join(details) + f". Report: {Path(result['report_dir']) / 'summary.md'}")


def warning_lines(result: dict) -> list[str]:
    """One line per failed warning-level check (what it observed, an example): what a run's
    log says as warnings while the run goes on."""
    return [f"data contract warning: {_describe(c)}" for c in result["checks"]
            if c["severity"] != CRITICAL and not c["success"]]


def jsonable(value: Any) -> Any:
    """``value`` with numpy scalars, paths and NaN made JSON-able."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        try:
            return value.item()  # numpy scalars
        except (ValueError, TypeError):
            return str(value)
    if isinstance(value, float) and value != value:
        return None
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def snippet(value: Any, regex: Optional[str]) -> str:
    """The part of a long text around what the regex matched, so the example shows the cause."""
    if not regex or not isinstance(value, str):
        return short(value)
    try:
        match = re.search(regex, value)
    except re.error:
        match = None
    if match is None or len(value) <= _EXAMPLE_CHARS:
        return short(value)
    start = max(0, match.start() - 25)
    text = repr(value[start:start + _EXAMPLE_CHARS - 10])
    return ("…" if start else "") + text + ("…" if start + _EXAMPLE_CHARS - 10 < len(value) else "")


def short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _EXAMPLE_CHARS else text[:_EXAMPLE_CHARS - 1] + "…"


def one_line(value: Any) -> str:
    """An error message on one line, without a trailing full stop."""
    return " ".join(str(value).split()).rstrip(".")


def _describe(check: dict) -> str:
    text = f"{check['split']}:{check['name']}"
    label = "; ".join(x for x in (check.get("expectation"), check.get("description")) if x)
    if label:
        text += f" [{label}]"
    text += f" observed {_observed_text(check['observed'])}"
    if check.get("examples"):
        text += f", e.g. {check['examples'][0]}"
    return text


def _observed_text(observed: Any) -> str:
    if isinstance(observed, dict) and "unexpected_count" in observed:
        return (f"{observed['unexpected_count']} of {observed['element_count']} rows unexpected "
                f"({observed['unexpected_percent']}%)")
    if isinstance(observed, float):
        return f"{observed:.4g}"
    if hasattr(observed, "item"):
        return _observed_text(observed.item())
    return str(observed)


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")
