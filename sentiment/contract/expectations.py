"""The data contract: what each IMDB split must satisfy, and how severe each breach is.

A critical breach stops a run; a warning is recorded and the run goes on. The thresholds are
Config's data-contract fields (min_rows, min_text_chars, max_text_chars, balance_low,
balance_high). Most checks are Great Expectations expectations, built by ``expectations``; the
three GE cannot express are listed in ``CUSTOM_CHECKS`` and computed beside it. Every outcome,
from GE or not, is recorded as one ``check`` dict.
"""

from __future__ import annotations

from typing import Any, Optional

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

# The checks GE has no expectation for: the file must decode before GE sees a table, GE's
# string columns are already decoded, and GE validates one batch at a time.
# name -> (severity, what it expects).
CUSTOM_CHECKS = {
    "parquet_readable": (CRITICAL, "the parquet file exists and decodes"),
    "text_valid_utf8": (CRITICAL, "text is valid UTF-8"),
    "train_test_overlap": (WARNING, "no review in both train and test"),
}


def check(name: str, split: str, severity: str, success: bool, observed: Any,
          examples: Optional[list] = None, expectation: Optional[str] = None,
          description: str = "") -> dict:
    """One check's outcome, as the result, the report and the failure message read it."""
    return {"name": name, "split": split, "severity": severity, "success": bool(success),
            "observed": observed, "examples": examples or [], "expectation": expectation,
            "description": description,
            "source": "ge" if expectation and expectation.startswith("expect_") else "custom"}


def custom_check(name: str, split: str, success: bool, observed: Any,
                 examples: Optional[list] = None) -> dict:
    """The outcome of one of CUSTOM_CHECKS, with the contract's severity and description."""
    severity, description = CUSTOM_CHECKS[name]
    return check(name, split, severity, success, observed, examples, description=description)


def expectations(gxe, cfg: Config, frame) -> dict[str, list]:
    """The critical and warning GE expectations for one split (``gxe``:
    ``great_expectations.expectations``), each tagged with its check name in ``meta``.

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
