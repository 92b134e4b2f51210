"""Running the contract's expectations through Great Expectations 1.x.

One ephemeral context per validation, whose only Data Docs site is a folder of the report;
per split, one suite per severity, validated together by one checkpoint. GE's results are
turned into the contract's check dicts.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sentiment.config import Config
from sentiment.contract.expectations import check, expectations
from sentiment.contract.report import EXAMPLES, one_line, snippet

_RESULT_FORMAT = {"result_format": "SUMMARY", "partial_unexpected_count": 5}


def import_gx():
    """``great_expectations`` and its ``expectations`` module, with analytics off."""
    # The contract forbids telemetry; set before GE reads it at import.
    os.environ["GX_ANALYTICS_ENABLED"] = "False"
    import great_expectations as gx
    import great_expectations.expectations as gxe
    return gx, gxe


def make_context(gx, docs_dir: Path):
    """An ephemeral context whose one Data Docs site is ``docs_dir`` (an absolute path)."""
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


def run_suites(gx, gxe, context, frames: dict, cfg: Config) -> dict:
    """Run each split's suites through a checkpoint; {split: {severity: suite result}}."""
    if not frames:
        return {}
    datasource = context.data_sources.add_pandas("imdb")
    results: dict[str, dict] = {}
    for split, frame in frames.items():
        batch = datasource.add_dataframe_asset(split).add_batch_definition_whole_dataframe(split)
        definitions = {}
        for severity, suite_expectations in expectations(gxe, cfg, frame).items():
            if not suite_expectations:
                continue
            suite = context.suites.add(gx.ExpectationSuite(name=f"imdb_{split}_{severity}"))
            for expectation in suite_expectations:
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


def results_json(results: dict) -> dict:
    """GE's full results of ``run_suites``, as GE serializes them."""
    return {split: {sev: r.to_json_dict() for sev, r in by_sev.items()}
            for split, by_sev in results.items()}


def checks_from_ge(split: str, suite_result) -> list[dict]:
    """One check dict per expectation of a suite result, with up to EXAMPLES examples."""
    checks = []
    for r in suite_result.results:
        config = r.expectation_config
        kwargs = config.kwargs
        res = r.result or {}
        examples: list[str] = []
        exception = (r.exception_info or {}).get("raised_exception")
        if exception:
            observed: Any = "error: " + one_line((r.exception_info or {}).get("exception_message"))
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
            examples = [f"row {row}: {snippet(value, regex)}" for row, value in zip(rows, values)]
            examples = examples[:EXAMPLES]
        column = kwargs.get("column")
        expectation = config.type + (f"({column})" if column else "")
        checks.append(check(config.meta.get("check", config.type), split,
                            str(getattr(config.severity, "value", config.severity)),
                            bool(r.success) and not exception, observed, examples, expectation,
                            config.description or ""))
    return checks
