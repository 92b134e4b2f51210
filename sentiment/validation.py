"""The data contract: Great Expectations 1.x checks that stop a run on bad IMDB data.

A data source is a folder holding ``train.parquet`` and ``test.parquet`` (or one parquet file,
validated as a split named by its stem). Each split is read with pyarrow at the raw level, so
that a corrupt or empty file, invalid UTF-8 or a wrongly typed column becomes a failed critical
expectation in the report instead of a traceback. GE then validates each split against a
critical suite (a failure stops the pipeline) and a warning suite (recorded, the run goes on).
The two conditions GE has no expectation for, valid UTF-8 and texts shared by train and test,
are computed here and reported beside GE's results.

Everything is written under one report directory: ``summary.md``, ``summary.json``,
``ge_results.json`` and GE's Data Docs in ``data_docs/``.

Importing this module is cheap: pyarrow, pandas and great_expectations load on first use.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

from sentiment.config import Config

SPLITS = ("train", "test")
COLUMNS = ("text", "label")
CRITICAL = "critical"
WARNING = "warning"

# Python's str.strip() whitespace. Listed explicitly because pandas runs these patterns through
# pyarrow's RE2, whose \s is ASCII-only; the same class also holds under Python's re.
_WS = "[\\s\\x0b\\x1c-\\x1f\\x85\\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
_NON_WS = "[^" + _WS[1:]
BLANK_REGEX = f"^{_WS}*$"
NUL_REGEX = r"\x00"
# An HTML tag such as <br />, <i> or </a>; a bare "<" in prose ("<3", "a < b") is not one.
HTML_REGEX = r"<\s*/?\s*[A-Za-z][A-Za-z0-9]*(?:\s[^<>]*)?/?\s*>"
_INT_TYPES = ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"]
_TEXT_TYPES = ["StringDtype", "str"]

_RESULT_FORMAT = {"result_format": "SUMMARY", "partial_unexpected_count": 5}
_EXAMPLES = 3
_EXAMPLE_CHARS = 70


class ValidationError(Exception):
    """A critical data expectation failed; the message names each one."""

    def __init__(self, message: str, result: Optional["ValidationResult"] = None) -> None:
        super().__init__(message)
        self.result = result


@dataclass
class ValidationResult:
    data: str
    success: bool
    critical_failures: list[str]
    warnings: list[str]
    checks: list[dict]
    summary_markdown: str
    report_dir: Path
    stats: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """Small and JSON-able, for handing between Prefect tasks and logging to MLflow."""
        return _jsonable({
            "data": self.data,
            "success": self.success,
            "critical_failures": self.critical_failures,
            "warnings": self.warnings,
            "report_dir": str(self.report_dir),
            "stats": self.stats,
            "timings": self.timings,
            "checks": self.checks,
        })

    def failure_message(self) -> str:
        return _failure_message(self.to_dict())


def ensure_valid(result: Union[ValidationResult, dict]) -> Union[ValidationResult, dict]:
    """Raise ValidationError naming the failed critical expectations; pass a valid result on.

    Accepts the dict from ``ValidationResult.to_dict()`` too, as Prefect tasks exchange those.
    """
    if isinstance(result, dict):
        if not result["success"]:
            raise ValidationError(_failure_message(result))
    elif not result.success:
        raise ValidationError(result.failure_message(), result)
    return result


def _failure_message(result: dict) -> str:
    if result["success"]:
        return f"data validation passed for {result['data']}"
    details = [_describe(c) for c in result["checks"]
               if c["severity"] == CRITICAL and not c["success"]]
    return (f"data validation failed for {result['data']}: "
            f"{len(result['critical_failures'])} critical expectation(s) failed: "
            + "; ".join(details) + f". Report: {Path(result['report_dir']) / 'summary.md'}")


def run_validate_cli(cfg: Config, data: str, report_dir: Optional[str] = None) -> int:
    """``sentiment validate``: print the summary; 0 on pass or warnings only, 1 otherwise.

    Without a report directory the report goes to ``<run_dir>/validation``.
    """
    report = Path(report_dir) if report_dir else Path(cfg.run_dir) / "validation"
    try:
        result = validate_data(data, cfg, report)
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(result.summary_markdown)
    if result.success:
        verdict = "with warnings: " + ", ".join(result.warnings) if result.warnings else "all passed"
        print(f"\nvalidation passed ({verdict})")
        return 0
    print("\nvalidation FAILED: " + result.failure_message(), file=sys.stderr)
    return 1


# ------------------------------------------------------------------------------------------
def validate_data(data: Union[str, Path], cfg: Config, report_dir: Union[str, Path]) -> ValidationResult:
    """Validate a data source against the contract and write the report under report_dir.

    Raises FileNotFoundError when ``data`` does not exist; every problem with the data itself
    is a failed expectation in the result.
    """
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    sources = _resolve_sources(Path(data))
    # Absolute, because GE's docs store refuses a relative base directory.
    report_dir = Path(report_dir).resolve()
    report_dir.mkdir(parents=True, exist_ok=True)

    t = time.perf_counter()
    gx, gxe = _import_gx()
    timings["import"] = time.perf_counter() - t

    t = time.perf_counter()
    docs_dir = report_dir / "data_docs"
    # A previous report's pages would otherwise sit beside this run's in the same site.
    shutil.rmtree(docs_dir, ignore_errors=True)
    context = _make_context(gx, docs_dir)
    timings["context"] = time.perf_counter() - t

    t = time.perf_counter()
    frames: dict[str, Any] = {}
    checks: list[dict] = []
    for split, path in sources.items():
        frame, read_checks = _read_split(split, path)
        checks += read_checks
        if frame is not None:
            frames[split] = frame
    timings["read"] = time.perf_counter() - t

    t = time.perf_counter()
    ge_results = _run_ge(gx, gxe, context, frames, cfg)
    for split in frames:
        for severity in (CRITICAL, WARNING):
            if severity in ge_results[split]:
                checks += _checks_from_ge(split, ge_results[split][severity])
    timings["ge_validation"] = time.perf_counter() - t

    t = time.perf_counter()
    stats = _stats(frames, checks)
    if "train" in frames and "test" in frames:
        checks.append(_overlap_check(frames["train"], frames["test"], stats))
    timings["custom_checks"] = time.perf_counter() - t

    t = time.perf_counter()
    context.build_data_docs()
    timings["docs"] = time.perf_counter() - t

    order = {s: i for i, s in enumerate(list(sources) + ["train/test"])}
    checks.sort(key=lambda c: (c["severity"] != CRITICAL, order.get(c["split"], 99)))
    critical = [f"{c['split']}:{c['name']}" for c in checks
                if c["severity"] == CRITICAL and not c["success"]]
    warnings = [f"{c['split']}:{c['name']}" for c in checks
                if c["severity"] == WARNING and not c["success"]]

    t = time.perf_counter()
    result = ValidationResult(data=str(data), success=not critical, critical_failures=critical,
                              warnings=warnings, checks=checks, summary_markdown="",
                              report_dir=report_dir, stats=stats, timings=timings)
    ge_json = {split: {sev: r.to_json_dict() for sev, r in by_sev.items()}
               for split, by_sev in ge_results.items()}
    (report_dir / "ge_results.json").write_text(json.dumps(_jsonable(ge_json), indent=1))
    timings["write"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0
    result.summary_markdown = _summary_markdown(result)
    (report_dir / "summary.md").write_text(result.summary_markdown)
    (report_dir / "summary.json").write_text(json.dumps(result.to_dict(), indent=1))
    return result


# ------------------------------------------------------------------------------------------
def _resolve_sources(data: Path) -> dict[str, Path]:
    if not data.exists():
        raise FileNotFoundError(f"data path not found: {data}")
    if data.is_dir():
        # Missing split files are reported as failed expectations, not raised: the report
        # should show everything that is wrong with the folder at once.
        return {split: data / f"{split}.parquet" for split in SPLITS}
    return {data.stem: data}


def _import_gx():
    # The contract forbids telemetry; set before GE reads it at import.
    os.environ["GX_ANALYTICS_ENABLED"] = "False"
    import great_expectations as gx
    import great_expectations.expectations as gxe
    return gx, gxe


def _make_context(gx, docs_dir: Path):
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )
    # In-memory stores and a single docs site inside the report dir: an ephemeral context's
    # default docs site is a fresh temp dir, and a file context would scaffold gx/ in the cwd.
    project_config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
        data_docs_sites={
            "report": {
                "class_name": "SiteBuilder",
                "show_how_to_buttons": False,
                "store_backend": {"class_name": "TupleFilesystemStoreBackend",
                                  "base_directory": str(docs_dir)},
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            }
        },
    )
    return gx.get_context(project_config=project_config, mode="ephemeral")


# ------------------------------------------------------------------------------------------
def _check(name: str, split: str, severity: str, success: bool, observed: Any,
           examples: Optional[list] = None, expectation: Optional[str] = None,
           description: str = "") -> dict:
    return {"name": name, "split": split, "severity": severity, "success": bool(success),
            "observed": observed, "examples": examples or [], "expectation": expectation,
            "description": description,
            "source": "ge" if expectation and expectation.startswith("expect_") else "custom"}


def _read_split(split: str, path: Path):
    """The split as a DataFrame for GE (None if unreadable) and the raw-level checks."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    def readable(ok: bool, observed: str) -> dict:
        return _check("parquet_readable", split, CRITICAL, ok, observed,
                      description="the parquet file exists and decodes")

    if not path.is_file():
        return None, [readable(False, f"file not found: {path}")]
    if path.stat().st_size == 0:
        return None, [readable(False, f"empty file (0 bytes): {path}")]
    try:
        table = pq.read_table(path)
    except Exception as e:  # noqa: BLE001 - any decoding failure means the file is unusable
        return None, [readable(False, f"not a readable parquet file: {path}: {_one_line(e)}")]

    checks = []
    if "text" in table.column_names:
        text = table.column("text")
        if pa.types.is_dictionary(text.type):
            # A categorical text column is a storage choice, not a type problem.
            text = text.cast(text.type.value_type)
        utf8_check, text = _utf8_check(split, text)
        if utf8_check is not None:
            checks.append(utf8_check)
            table = table.set_column(table.column_names.index("text"), "text", text)

    def to_pandas_type(t):
        # The NA-valued string dtype is the one GE's in_type_list can name ("StringDtype").
        if pa.types.is_string(t) or pa.types.is_large_string(t) \
                or getattr(pa.types, "is_string_view", lambda _: False)(t):
            return pd.StringDtype()
        return None

    try:
        frame = table.to_pandas(types_mapper=to_pandas_type)
    except Exception as e:  # noqa: BLE001 - columns pandas cannot hold make the split unusable
        return None, [readable(False, f"cannot convert {path} to a table: {_one_line(e)}"), *checks]
    schema = ", ".join(f"{f.name}: {f.type}" for f in table.schema)
    return frame, [readable(True, f"{table.num_rows} rows; {schema}"), *checks]


def _utf8_check(split: str, text):
    """Check that a string or binary ``text`` column is valid UTF-8; return it as strings.

    pyarrow reads a parquet string column without validating it, and pandas then fails on the
    first bad value, so the bytes are checked here. Invalid values are decoded with
    replacement characters, so that GE can still check the rest of the column.
    """
    import pyarrow as pa

    t = text.type
    as_binary = {pa.string(): pa.binary(), pa.large_string(): pa.large_binary()}
    if hasattr(pa, "string_view"):  # pyarrow >= 16
        as_binary[pa.string_view()] = pa.binary_view()
    if t in as_binary:
        try:
            text.validate(full=True)
            return _check("text_valid_utf8", split, CRITICAL, True, "0 invalid values",
                          description="text is valid UTF-8"), text
        except pa.ArrowInvalid:
            raw = text.cast(as_binary[t])
    elif pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t) \
            or getattr(pa.types, "is_binary_view", lambda _: False)(t):
        raw = text
    else:
        return None, text  # not text at all: GE's type expectation reports it

    values, bad = [], []
    for row, value in enumerate(raw.to_pylist()):
        if value is None:
            values.append(None)
            continue
        try:
            values.append(value.decode("utf-8"))
        except UnicodeDecodeError as e:
            bad.append((row, e.start, value))
            values.append(value.decode("utf-8", errors="replace"))
    examples = [f"invalid UTF-8 in column text, row {row} (byte {start}: "
                f"{value[max(0, start - 10):start + 4]!r})" for row, start, value in bad[:_EXAMPLES]]
    observed = (f"invalid UTF-8 in column text, row {bad[0][0]} ({len(bad)} invalid value(s))"
                if bad else f"0 invalid values (stored as {t})")
    return (_check("text_valid_utf8", split, CRITICAL, not bad, observed, examples,
                   description="text is valid UTF-8"),
            pa.chunked_array([pa.array(values, pa.large_string())]))


# ------------------------------------------------------------------------------------------
def _expectations(gxe, cfg: Config, frame) -> dict[str, list]:
    """The critical and warning expectations for one split.

    Column expectations are added only for columns that exist, so that a missing column is
    reported once, by the column-set expectation, rather than as a cascade of errors.
    """
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    def exp(cls, name, severity, **kwargs):
        return cls(meta={"check": name}, severity=severity, **kwargs)

    critical = [
        exp(gxe.ExpectTableColumnsToMatchSet, "columns_exact", CRITICAL,
            column_set=list(COLUMNS), exact_match=True,
            description="exactly the columns text and label"),
        exp(gxe.ExpectTableRowCountToBeBetween, "row_count_min", CRITICAL,
            min_value=cfg.min_rows, description=f"at least {cfg.min_rows} rows (min_rows)"),
    ]
    warning = []
    if "text" in frame.columns:
        critical += [
            exp(gxe.ExpectColumnValuesToBeInTypeList, "text_type", CRITICAL,
                column="text", type_list=_TEXT_TYPES, description="text is a string column"),
            exp(gxe.ExpectColumnValuesToNotBeNull, "text_not_null", CRITICAL, column="text",
                description="no null text"),
            exp(gxe.ExpectColumnValuesToNotMatchRegex, "text_not_blank", CRITICAL,
                column="text", regex=BLANK_REGEX, description="no empty or whitespace-only text"),
            exp(gxe.ExpectColumnValuesToNotMatchRegex, "text_no_nul", CRITICAL,
                column="text", regex=NUL_REGEX, description="no NUL bytes in text"),
            exp(gxe.ExpectColumnValueLengthsToBeBetween, "text_max_length", CRITICAL,
                column="text", max_value=cfg.max_text_chars,
                description=f"at most {cfg.max_text_chars} characters (max_text_chars)"),
        ]
        if cfg.min_text_chars > 1:
            # min_text_chars counts the stripped text; a length expectation would count the
            # padding, so the too-short texts are matched instead. <=1 is the blank check.
            critical.append(exp(
                gxe.ExpectColumnValuesToNotMatchRegex, "text_min_length", CRITICAL,
                column="text", regex=_shorter_than_regex(cfg.min_text_chars),
                description=f"at least {cfg.min_text_chars} characters after stripping "
                            f"(min_text_chars)"))
        warning += [
            exp(gxe.ExpectColumnValuesToBeUnique, "text_unique", WARNING, column="text",
                description="no duplicate texts within the split"),
            exp(gxe.ExpectColumnValuesToNotMatchRegex, "text_html_tags", WARNING,
                column="text", regex=HTML_REGEX, description="no HTML tags such as `<br />`"),
        ]
    if "label" in frame.columns:
        critical += [
            exp(gxe.ExpectColumnValuesToBeInTypeList, "label_integer", CRITICAL,
                column="label", type_list=_INT_TYPES, description="label is integer-typed"),
            exp(gxe.ExpectColumnValuesToNotBeNull, "label_not_null", CRITICAL, column="label",
                description="no null label"),
            exp(gxe.ExpectColumnValuesToBeInSet, "label_in_set", CRITICAL,
                column="label", value_set=[0, 1], description="label in {0, 1}"),
        ]
        label = frame["label"]
        # A mean of strings or of nothing is an error, not a balance; the critical
        # expectations above already report those cases.
        if len(frame) and is_numeric_dtype(label) and not is_bool_dtype(label):
            warning.append(exp(
                gxe.ExpectColumnMeanToBeBetween, "label_balance", WARNING, column="label",
                min_value=cfg.balance_low, max_value=cfg.balance_high,
                description=f"positive share in [{cfg.balance_low}, {cfg.balance_high}]"))
    return {CRITICAL: critical, WARNING: warning}


def _shorter_than_regex(min_chars: int) -> str:
    # Matches a text whose stripped form has fewer than min_chars characters (min_chars >= 2):
    # nothing, one character, or two non-blank ends at most min_chars - 3 characters apart.
    inner = f"{_NON_WS}(?:.{{0,{min_chars - 3}}}{_NON_WS})?" if min_chars > 2 else _NON_WS
    return f"(?s)^{_WS}*(?:{inner})?{_WS}*$"


def _run_ge(gx, gxe, context, frames: dict, cfg: Config) -> dict:
    """Run each split's suites through a checkpoint; {split: {severity: suite result}}."""
    if not frames:
        return {}
    datasource = context.data_sources.add_pandas("imdb")
    results: dict[str, dict] = {}
    for split, frame in frames.items():
        batch = datasource.add_dataframe_asset(split).add_batch_definition_whole_dataframe(split)
        definitions = {}
        for severity, expectations in _expectations(gxe, cfg, frame).items():
            if not expectations:
                continue
            suite = context.suites.add(gx.ExpectationSuite(name=f"imdb_{split}_{severity}"))
            for expectation in expectations:
                suite.add_expectation(expectation)
            definitions[severity] = context.validation_definitions.add(
                gx.ValidationDefinition(name=f"imdb_{split}_{severity}", data=batch, suite=suite))
        checkpoint = context.checkpoints.add(gx.Checkpoint(
            name=f"imdb_{split}", validation_definitions=list(definitions.values()),
            result_format=_RESULT_FORMAT))
        run = checkpoint.run(batch_parameters={"dataframe": frame})
        by_suite = {r.suite_name: r for r in run.run_results.values()}
        results[split] = {sev: by_suite[d.suite.name] for sev, d in definitions.items()}
    return results


def _checks_from_ge(split: str, suite_result) -> list[dict]:
    checks = []
    for r in suite_result.results:
        config = r.expectation_config
        kwargs = config.kwargs
        res = r.result or {}
        examples: list[str] = []
        exception = (r.exception_info or {}).get("raised_exception")
        if exception:
            observed: Any = "error: " + _one_line((r.exception_info or {}).get("exception_message"))
        elif "observed_value" in res:
            observed = res["observed_value"]
            mismatched = (res.get("details") or {}).get("mismatched") or {}
            for kind in ("missing", "unexpected"):
                if mismatched.get(kind):
                    examples.append(f"{kind} column(s): {', '.join(map(str, mismatched[kind]))}")
        else:
            observed = {"unexpected_count": res.get("unexpected_count", 0),
                        "element_count": res.get("element_count", 0),
                        "unexpected_percent": round(float(res.get("unexpected_percent") or 0), 3)}
            rows = res.get("partial_unexpected_index_list") or []
            values = res.get("partial_unexpected_list") or []
            regex = kwargs.get("regex") if config.type.endswith("_match_regex") else None
            examples = [f"row {row}: {_snippet(value, regex)}" for row, value in zip(rows, values)]
            examples = examples[:_EXAMPLES]
        column = kwargs.get("column")
        expectation = config.type + (f"({column})" if column else "")
        checks.append(_check(config.meta.get("check", config.type), split,
                             str(getattr(config.severity, "value", config.severity)),
                             bool(r.success) and not exception, observed, examples, expectation,
                             config.description or ""))
    return checks


# ------------------------------------------------------------------------------------------
def _stats(frames: dict, checks: list[dict]) -> dict:
    by_name = {(c["split"], c["name"]): c for c in checks}
    stats: dict[str, Any] = {"rows": {s: int(len(f)) for s, f in frames.items()},
                             "duplicate_rows": {}, "duplicate_extra_copies": {},
                             "html_share": {}, "positive_share": {}}
    html_rows = html_total = 0
    for split, frame in frames.items():
        unique = by_name.get((split, "text_unique"))
        if unique and isinstance(unique["observed"], dict):
            # GE counts every row that shares its text; the extra copies are what dedup removes.
            stats["duplicate_rows"][split] = unique["observed"]["unexpected_count"]
            stats["duplicate_extra_copies"][split] = int(frame["text"].duplicated().sum())
        html = by_name.get((split, "text_html_tags"))
        if html and isinstance(html["observed"], dict):
            n, total = html["observed"]["unexpected_count"], html["observed"]["element_count"]
            stats["html_share"][split] = n / total if total else 0.0
            html_rows, html_total = html_rows + n, html_total + total
        balance = by_name.get((split, "label_balance"))
        if balance and not isinstance(balance["observed"], str):
            stats["positive_share"][split] = balance["observed"]
    if html_total:
        stats["html_share"]["all"] = html_rows / html_total
    return stats


def _overlap_check(train, test, stats: dict) -> dict:
    """Texts in both train and test: GE validates one batch at a time, so this is pandas."""
    from pandas.api.types import is_string_dtype

    if "text" not in train.columns or "text" not in test.columns \
            or not (is_string_dtype(train["text"]) and is_string_dtype(test["text"])):
        return _check("train_test_overlap", "train/test", WARNING, True,
                      "not computed: a split has no text column",
                      description="no review in both train and test")
    shared = set(train["text"].dropna()) & set(test["text"].dropna())
    in_train = train["text"].isin(shared)
    in_test = test["text"].isin(shared)
    stats["train_test_overlap"] = {"texts": len(shared), "train_rows": int(in_train.sum()),
                                   "test_rows": int(in_test.sum())}
    rows = in_test[in_test].index[:_EXAMPLES]
    examples = [f"test row {row}: {_short(test['text'].iat[row])}" for row in rows]
    return _check("train_test_overlap", "train/test", WARNING, not shared,
                  stats["train_test_overlap"], examples,
                  description="no review in both train and test")


# ------------------------------------------------------------------------------------------
def _summary_markdown(result: ValidationResult) -> str:
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
        lines.append("- rows: " + _per_split(s["rows"]))
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


def _per_split(d: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in d.items())


def _snippet(value: Any, regex: Optional[str]) -> str:
    """The part of a long text around what the regex matched, so the example shows the cause."""
    import re

    if not regex or not isinstance(value, str):
        return _short(value)
    try:
        match = re.search(regex, value)
    except re.error:
        match = None
    if match is None or len(value) <= _EXAMPLE_CHARS:
        return _short(value)
    start = max(0, match.start() - 25)
    text = repr(value[start:start + _EXAMPLE_CHARS - 10])
    return ("…" if start else "") + text + ("…" if start + _EXAMPLE_CHARS - 10 < len(value) else "")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _EXAMPLE_CHARS else text[:_EXAMPLE_CHARS - 1] + "…"


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _one_line(value: Any) -> str:
    return " ".join(str(value).split()).rstrip(".")


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_jsonable(v) for v in value]
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
