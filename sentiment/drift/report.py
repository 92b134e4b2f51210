"""The drift report as people read it: a markdown table per part (the incoming reviews, the
scores), one row a feature. The same text is the Prefect artifact and, with the JSON, the
MLflow artifact of a scoring run."""

from __future__ import annotations

from sentiment.drift.compare import ALPHA, PSI_DRIFT, summary_line

WHAT = {"tokens": "length in tokens", "cut": "share longer than max_length (cut)",
        "unk_share": "[UNK] token share", "oov_share": "words outside the training vocabulary",
        "non_ascii": "non-ASCII character share", "markup": "HTML markup share",
        "score": "P(positive), against the validation split's",
        "positive_share": "predicted-positive share, against the validation split's"}


def _num(x) -> str:
    if x is None:
        return ""
    return f"{x:.3g}" if abs(x) < 1000 else f"{x:,.0f}"


def _table(part: dict) -> str:
    if not part.get("checked"):
        return f"Not checked: {part.get('reason', 'no data')}.\n"
    lines = ["| feature | training mean | incoming mean | training median | incoming median "
             "| PSI | p (test) | drift |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for r in part["features"]:
        lines.append(f"| {WHAT.get(r['feature'], r['feature'])} | {_num(r['reference_mean'])} | "
                     f"{_num(r['incoming_mean'])} | {_num(r['reference_p50'])} | "
                     f"{_num(r['incoming_p50'])} | {r['psi']:.3f} | {r['p_value']:.2g} "
                     f"({r['test']}) | {'**yes**' if r['drift'] else 'no'} |")
    return "\n".join(lines) + "\n"


def markdown(report: dict, model: str = "") -> str:
    rows = report.get("input", {}).get("rows", 0)
    head = (f"# Drift against the training data\n\n**{summary_line(report)}**\n\n"
            f"{rows} incoming reviews{', model ' + model if model else ''}; setting "
            f"`drift={report.get('setting')}`. A feature drifts when PSI >= {PSI_DRIFT} "
            f"(a major shift) and p < {ALPHA} (not chance).\n")
    return (f"{head}\n## Incoming reviews against the training split\n\n"
            f"{_table(report.get('input', {}))}\n## Scores against the validation split\n\n"
            f"{_table(report.get('prediction', {}))}")
