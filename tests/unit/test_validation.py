"""The data contract: crafted bad data is rejected by name; the real IMDB passes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sentiment.config import Config
from sentiment.contract.validation import ValidationError, ensure_valid, validate_data

REPO = Path(__file__).resolve().parents[2]
ROWS = 24
MIN_ROWS = 10


def _imdb_dir() -> Path | None:
    candidates = [os.environ.get("IMDB_DATA"), REPO.parent / "shared" / "data" / "imdb",
                  "/work/shared/data/imdb"]
    for c in candidates:
        if c and (Path(c) / "train.parquet").is_file() and (Path(c) / "test.parquet").is_file():
            return Path(c)
    return None


@pytest.fixture
def cfg() -> Config:
    return Config.from_preset("smoke", min_rows=MIN_ROWS)


def _good(n: int = ROWS, offset: int = 0) -> dict:
    return {"text": [f"review number {offset + i}: a film<br />worth seeing" for i in range(n)],
            "label": [i % 2 for i in range(n)]}


def _write(path: Path, columns: dict, schema: pa.Schema | None = None) -> Path:
    pq.write_table(pa.table(columns, schema=schema), path)
    return path


@pytest.fixture
def dataset(tmp_path):
    """A valid train/test folder whose train split a test then breaks."""
    data = tmp_path / "data"
    data.mkdir()
    _write(data / "train.parquet", _good())
    _write(data / "test.parquet", _good(offset=1000))
    return data


def _rejected(data: Path, cfg: Config, tmp_path: Path, name: str, *words: str):
    """Validate, and assert the critical check ``name`` failed and is named with ``words``."""
    result = validate_data(data, cfg, tmp_path / "report")
    assert not result.success
    assert f"train:{name}" in result.critical_failures, result.critical_failures
    with pytest.raises(ValidationError) as err:
        ensure_valid(result)
    message = str(err.value)
    assert f"train:{name}" in message
    for word in words:
        assert word in message, message
    summary = (tmp_path / "report" / "summary.md").read_text()
    assert f"train:{name}" in summary and "FAILED" in summary
    return result, message


# --- one case per critical expectation ------------------------------------------------
def test_missing_column(dataset, cfg, tmp_path):
    _write(dataset / "train.parquet", {"text": _good()["text"]})
    result, _ = _rejected(dataset, cfg, tmp_path, "columns_exact", "missing column(s): label")
    assert result.critical_failures == ["train:columns_exact"]


def test_extra_column(dataset, cfg, tmp_path):
    _write(dataset / "train.parquet", {**_good(), "rating": list(range(ROWS))})
    _rejected(dataset, cfg, tmp_path, "columns_exact", "unexpected column(s): rating")


def test_null_text(dataset, cfg, tmp_path):
    cols = _good()
    cols["text"][5] = None
    result, _ = _rejected(_after_write(dataset, cols), cfg, tmp_path, "text_not_null", "row 5")
    assert result.critical_failures == ["train:text_not_null"]


def test_blank_text(dataset, cfg, tmp_path):
    cols = _good()
    cols["text"][7] = " \t\n\u00a0 "
    result, _ = _rejected(_after_write(dataset, cols), cfg, tmp_path, "text_not_blank", "row 7")
    assert result.critical_failures == ["train:text_not_blank"]


def test_string_labels(dataset, cfg, tmp_path):
    cols = _good()
    cols["label"] = [str(v) for v in cols["label"]]
    result, message = _rejected(_after_write(dataset, cols), cfg, tmp_path, "label_integer")
    assert "train:label_in_set" in result.critical_failures
    assert "expect_column_values_to_be_in_type_list(label)" in message


def test_label_two(dataset, cfg, tmp_path):
    cols = _good()
    cols["label"][4] = 2
    result, _ = _rejected(_after_write(dataset, cols), cfg, tmp_path, "label_in_set", "row 4: 2")
    assert result.critical_failures == ["train:label_in_set"]


def test_nul_byte(dataset, cfg, tmp_path):
    cols = _good()
    cols["text"][9] = "fine until here\x00then binary junk"
    result, _ = _rejected(_after_write(dataset, cols), cfg, tmp_path, "text_no_nul", "row 9")
    assert result.critical_failures == ["train:text_no_nul"]


@pytest.mark.parametrize("storage", ["string", "binary"])
def test_invalid_utf8(dataset, cfg, tmp_path, storage):
    raw = [t.encode() for t in _good()["text"]]
    raw[11] = b"caf\xe9 au lait, latin-1 encoded"
    texts = pa.array(raw, pa.binary())
    # pyarrow writes a string column's bytes unchecked, which is how broken exports arise.
    texts = texts.view(pa.string()) if storage == "string" else texts
    pq.write_table(pa.table({"text": texts, "label": _good()["label"]}),
                   dataset / "train.parquet")
    result, _ = _rejected(dataset, cfg, tmp_path, "text_valid_utf8",
                          "invalid UTF-8 in column text, row 11")
    assert result.critical_failures == ["train:text_valid_utf8"]


def test_empty_file(dataset, cfg, tmp_path):
    (dataset / "train.parquet").write_bytes(b"")
    _rejected(dataset, cfg, tmp_path, "parquet_readable", "empty file (0 bytes)")


def test_parquet_without_rows(dataset, cfg, tmp_path):
    _write(dataset / "train.parquet", {"text": pa.array([], pa.string()),
                                       "label": pa.array([], pa.int64())})
    result, _ = _rejected(dataset, cfg, tmp_path, "row_count_min", "observed 0")
    assert result.critical_failures == ["train:row_count_min"]


def test_corrupt_parquet(dataset, cfg, tmp_path):
    good = (dataset / "train.parquet").read_bytes()
    (dataset / "train.parquet").write_bytes(good[: len(good) // 2])
    _rejected(dataset, cfg, tmp_path, "parquet_readable", "not a readable parquet file")


def test_too_few_rows(dataset, cfg, tmp_path):
    _write(dataset / "train.parquet", _good(MIN_ROWS - 1))
    result, message = _rejected(dataset, cfg, tmp_path, "row_count_min", f"observed {MIN_ROWS - 1}")
    assert result.critical_failures == ["train:row_count_min"]


def test_text_too_long(dataset, cfg, tmp_path):
    cols = _good()
    cols["text"][2] = "long " * 100
    _rejected(_after_write(dataset, cols), cfg.replace(max_text_chars=200), tmp_path,
              "text_max_length", "row 2")


def test_min_length_counts_the_stripped_text(dataset, cfg, tmp_path):
    cols = _good()
    cols["text"][3] = "     ok     "
    result, _ = _rejected(_after_write(dataset, cols), cfg.replace(min_text_chars=3), tmp_path,
                          "text_min_length", "row 3")
    assert result.critical_failures == ["train:text_min_length"]


def _after_write(dataset: Path, cols: dict) -> Path:
    _write(dataset / "train.parquet", cols)
    return dataset


# --- what passes, and what only warns ---------------------------------------------------
def test_clean_data_passes_and_writes_the_report(dataset, cfg, tmp_path):
    report = tmp_path / "report"
    result = validate_data(dataset, cfg, report)
    assert result.success and result.critical_failures == []
    assert {c["severity"] for c in result.checks} == {"critical", "warning"}
    assert sorted(p.name for p in report.iterdir()) == [
        "data_docs", "ge_results.json", "summary.html", "summary.json", "summary.md"]
    assert (report / "data_docs" / "index.html").is_file()
    # The page MLflow shows inline: every check, its own styles, nothing fetched from elsewhere.
    page = (report / "summary.html").read_text()
    assert "<style>" in page and "Data validation PASSED" in page
    assert not re.search(r"<link|<script|src=|href=|https?://", page)
    assert all(f"<td>{c['name']}</td>" in page for c in result.checks)
    assert json.loads((report / "summary.json").read_text()) == json.loads(
        json.dumps(result.to_dict()))
    ge = json.loads((report / "ge_results.json").read_text())
    assert set(ge) == {"train", "test"} and set(ge["train"]) == {"critical", "warning"}
    assert ge["train"]["critical"]["success"] is True
    assert ensure_valid(result) is result
    assert ensure_valid(result.to_dict())["success"] is True


def test_warnings_do_not_stop_the_run(dataset, cfg, tmp_path):
    cols = _good()
    cols["text"][1] = cols["text"][0]           # a duplicate within train
    cols["label"] = [1] * (ROWS - 2) + [0, 0]    # far outside the balance band
    _write(dataset / "train.parquet", cols)
    test_cols = _good(offset=1000)
    test_cols["text"][0] = cols["text"][5]       # a train review leaked into test
    _write(dataset / "test.parquet", test_cols)
    result = validate_data(dataset, cfg, tmp_path / "report")
    assert result.success
    assert {"train:text_unique", "train:label_balance", "train/test:train_test_overlap",
            "train:text_html_tags"} <= set(result.warnings)
    assert "test:label_balance" not in result.warnings
    assert result.stats["duplicate_extra_copies"]["train"] == 1
    assert result.stats["duplicate_rows"]["train"] == 2
    assert result.stats["train_test_overlap"] == {"texts": 1, "train_rows": 1, "test_rows": 1}
    assert result.stats["html_share"]["train"] == 1.0
    ensure_valid(result.to_dict())


def test_a_relative_report_dir(dataset, cfg, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = validate_data(dataset, cfg, "reports/validation")
    assert result.success
    assert result.report_dir == tmp_path / "reports" / "validation"
    assert (tmp_path / "reports" / "validation" / "data_docs" / "index.html").is_file()


def test_a_single_file_is_one_split(dataset, cfg, tmp_path):
    result = validate_data(dataset / "test.parquet", cfg, tmp_path / "report")
    assert result.success
    assert {c["split"] for c in result.checks} == {"test"}


def test_a_folder_missing_a_split_fails(dataset, cfg, tmp_path):
    (dataset / "test.parquet").unlink()
    result = validate_data(dataset, cfg, tmp_path / "report")
    assert result.critical_failures == ["test:parquet_readable"]
    assert "file not found" in str(pytest.raises(ValidationError, ensure_valid, result).value)


def test_a_missing_path_is_named(cfg, tmp_path):
    # The `sentiment validate` command's exit codes are tested in test_cli.py.
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match=re.escape(str(missing))):
        validate_data(missing, cfg, tmp_path / "report")


def test_nothing_is_written_outside_the_report_dir(dataset, cfg, tmp_path):
    # A fresh interpreter, so GE's import-time side effects are watched too; HOME, TMPDIR and
    # the cwd all point at empty folders that must stay empty.
    home, tmp, cwd = (tmp_path / n for n in ("home", "tmp", "cwd"))
    for d in (home, tmp, cwd):
        d.mkdir()
    report = tmp_path / "report"
    before = sorted(p.name for p in dataset.iterdir())
    code = ("from sentiment.config import Config; from sentiment.contract.validation import validate_data;"
            f"assert validate_data({str(dataset)!r}, Config.from_preset('smoke', min_rows=1),"
            f" {str(report)!r}).success")
    env = {**os.environ, "HOME": str(home), "TMPDIR": str(tmp)}
    subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, check=True, timeout=120)
    assert [list(d.iterdir()) for d in (home, tmp, cwd)] == [[], [], []]
    assert sorted(p.name for p in dataset.iterdir()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cwd", "data", "home", "report", "tmp"]
    assert (report / "data_docs" / "index.html").is_file()


def test_importing_the_module_does_no_work():
    code = ("import sys, sentiment.contract.validation; "
            "heavy = [m for m in ('great_expectations', 'pandas', 'pyarrow', 'prefect') "
            "if m in sys.modules]; assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# --- the real IMDB ------------------------------------------------------------------------
@pytest.mark.slow
def test_real_imdb_passes_every_critical_expectation(tmp_path):
    data = _imdb_dir()
    if data is None:
        pytest.skip("real IMDB parquet files not found (set IMDB_DATA)")
    result = validate_data(data, Config(), tmp_path / "report")
    assert result.success, result.failure_message()
    assert result.timings["total"] < 30

    # The reported numbers, recomputed here with plain pandas and Python's re.
    frames = {s: pd.read_parquet(data / f"{s}.parquet") for s in ("train", "test")}
    stats = result.stats
    for split, frame in frames.items():
        texts = frame["text"].astype(object)
        assert stats["rows"][split] == len(frame)
        assert stats["duplicate_extra_copies"][split] == len(frame) - texts.nunique()
        counts = texts.value_counts()
        assert stats["duplicate_rows"][split] == int(counts[counts > 1].sum())
        with_br = texts.map(lambda t: "<br" in t.lower()).mean()
        any_tag = texts.map(lambda t: re.search(r"<[a-zA-Z/][^>]*>", t) is not None).mean()
        assert with_br - 0.005 <= stats["html_share"][split] <= any_tag + 0.005
        assert stats["positive_share"][split] == pytest.approx(frame["label"].mean())
    shared = set(frames["train"]["text"]) & set(frames["test"]["text"])
    assert stats["train_test_overlap"]["texts"] == len(shared) > 0
    assert stats["train_test_overlap"]["test_rows"] == int(frames["test"]["text"].isin(shared).sum())
    assert {"train/test:train_test_overlap", "train:text_unique"} <= set(result.warnings)
