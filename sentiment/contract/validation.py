"""Data validation: check a data source against the data contract and write the report.

``validate_data`` reads each split at the raw level (``raw_reading``), runs the contract's
expectations through Great Expectations (``data_contract``, ``ge_runner``) and writes the
report (``validation_report``) under one directory: ``summary.md``, ``summary.json``,
``ge_results.json`` and GE's Data Docs in ``data_docs/``. A critical failure stops a run
(``ensure_valid``); a warning is recorded and the run goes on.

Importing this module is cheap: pyarrow, pandas and great_expectations load on first use.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

from sentiment.common.files import atomic_write_text
from sentiment.config import Config
from sentiment.contract import ge_runner, raw_reading
from sentiment.contract import report as validation_report
from sentiment.contract.expectations import CRITICAL, WARNING


class ValidationError(Exception):
    """A critical data expectation failed; the message names each one."""

    def __init__(self, message: str, result: Optional[ValidationResult] = None) -> None:
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
        return validation_report.jsonable({
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
        return validation_report.failure_message(self.to_dict())


def ensure_valid(result: Union[ValidationResult, dict]) -> Union[ValidationResult, dict]:
    """Raise ValidationError naming the failed critical expectations; pass a valid result on.

    Accepts the dict from ``ValidationResult.to_dict()`` too, as Prefect tasks exchange those.
    """
    if isinstance(result, dict):
        if not result["success"]:
            raise ValidationError(validation_report.failure_message(result))
    elif not result.success:
        raise ValidationError(result.failure_message(), result)
    return result


def validate_data(data: Union[str, Path], cfg: Config, report_dir: Union[str, Path]) -> ValidationResult:
    """Validate a data source against the contract and write the report under report_dir.

    Raises FileNotFoundError when ``data`` does not exist; every problem with the data itself
    is a failed expectation in the result.
    """
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    sources = raw_reading.resolve_sources(Path(data))
    # Absolute, because GE's docs store refuses a relative base directory.
    report_dir = Path(report_dir).resolve()
    report_dir.mkdir(parents=True, exist_ok=True)

    t = time.perf_counter()
    gx, gxe = ge_runner.import_gx()
    timings["import"] = time.perf_counter() - t

    t = time.perf_counter()
    docs_dir = report_dir / "data_docs"
    # A previous report's pages would otherwise sit beside this run's in the same site.
    shutil.rmtree(docs_dir, ignore_errors=True)
    context = ge_runner.make_context(gx, docs_dir)
    timings["context"] = time.perf_counter() - t

    t = time.perf_counter()
    frames: dict[str, Any] = {}
    checks: list[dict] = []
    for split, path in sources.items():
        frame, read_checks = raw_reading.read_split(split, path)
        checks += read_checks
        if frame is not None:
            frames[split] = frame
    timings["read"] = time.perf_counter() - t

    t = time.perf_counter()
    ge_results = ge_runner.run_suites(gx, gxe, context, frames, cfg)
    for split in frames:
        for severity in (CRITICAL, WARNING):
            if severity in ge_results[split]:
                checks += ge_runner.checks_from_ge(split, ge_results[split][severity])
    timings["ge_validation"] = time.perf_counter() - t

    t = time.perf_counter()
    stats = validation_report.stats(frames, checks)
    if "train" in frames and "test" in frames:
        checks.append(validation_report.overlap_check(frames["train"], frames["test"], stats))
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
    ge_json = validation_report.jsonable(ge_runner.results_json(ge_results))
    atomic_write_text(report_dir / "ge_results.json", json.dumps(ge_json, indent=1))
    timings["write"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0
    result.summary_markdown = validation_report.summary_markdown(result)
    atomic_write_text(report_dir / "summary.md", result.summary_markdown)
    atomic_write_text(report_dir / "summary.html", validation_report.summary_html(result))
    atomic_write_text(report_dir / "summary.json", json.dumps(result.to_dict(), indent=1))
    return result
