"""Reading a data source at the raw level, so that unusable bytes become failed checks.

A data source is a folder holding ``train.parquet`` and ``test.parquet`` (or one parquet file,
a split named by its stem). Each split is read with pyarrow before pandas or GE touch it: a
missing, empty or corrupt file fails ``parquet_readable`` and invalid UTF-8 in the text column
fails ``text_valid_utf8``, instead of a traceback.
"""

from __future__ import annotations

from pathlib import Path

from sentiment.contract.expectations import SPLITS, custom_check
from sentiment.contract.report import EXAMPLES, one_line


def resolve_sources(data: Path) -> dict[str, Path]:
    """{split: parquet path}; raises FileNotFoundError when ``data`` does not exist."""
    if not data.exists():
        raise FileNotFoundError(f"data path not found: {data}")
    if data.is_dir():
        # Missing split files are reported as failed expectations, not raised: the report
        # should show everything that is wrong with the folder at once.
        return {split: data / f"{split}.parquet" for split in SPLITS}
    return {data.stem: data}


def read_split(split: str, path: Path):
    """The split as a DataFrame for GE (None if unreadable) and the raw-level checks."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    def readable(ok: bool, observed: str) -> dict:
        return custom_check("parquet_readable", split, ok, observed)

    if not path.is_file():
        return None, [readable(False, f"file not found: {path}")]
    if path.stat().st_size == 0:
        return None, [readable(False, f"empty file (0 bytes): {path}")]
    try:
        table = pq.read_table(path)
    except Exception as e:  # noqa: BLE001 - any decoding failure means the file is unusable
        return None, [readable(False, f"not a readable parquet file: {path}: {one_line(e)}")]

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
        return None, [readable(False, f"cannot convert {path} to a table: {one_line(e)}"), *checks]
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
            return custom_check("text_valid_utf8", split, True, "0 invalid values"), text
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
                f"{value[max(0, start - 10):start + 4]!r})" for row, start, value in bad[:EXAMPLES]]
    observed = (f"invalid UTF-8 in column text, row {bad[0][0]} ({len(bad)} invalid value(s))"
                if bad else f"0 invalid values (stored as {t})")
    return (custom_check("text_valid_utf8", split, not bad, observed, examples),
            pa.chunked_array([pa.array(values, pa.large_string())]))
