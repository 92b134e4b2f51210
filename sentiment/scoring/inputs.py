"""The reviews to score: parquet, CSV or JSON-lines files, or a folder of them.

Two steps, so that a mistake costs one line before any model loads: ``check_inputs`` reads
only what it needs to find the files and their columns; ``read_inputs`` reads every row, in a
stable order (a folder's files by name, each file's rows as stored), and keeps each one: a
text that is null, empty or not a string is still a row, for the scorer to mark.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".jsonl": "jsonl",
           ".ndjson": "jsonl"}
ROW_COLUMN = "row"  # the key column when the input names no id column
_KNOWN = ", ".join(sorted(FORMATS))


class ScoringInputError(ValueError):
    """A bad input or output path, format or column: one line naming it."""


@dataclass(frozen=True)
class InputPlan:
    """The files to read, in order, and the columns that matter."""

    files: tuple[str, ...]
    text_column: str
    id_column: Optional[str]

    @property
    def key_column(self) -> str:
        return self.id_column or ROW_COLUMN


def _format(path: Path) -> str:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ScoringInputError(f"input {path}: unknown format {path.suffix or '(no suffix)'!r} "
                                f"(use {_KNOWN})")
    return fmt


def input_files(source: str | Path, allow_empty: bool = False) -> list[Path]:
    """The data files of `source`: the file itself, or a folder's files sorted by name (hidden
    files, such as a writer's temp files, skipped). A folder holding a file of another format
    is refused rather than read in part; an empty one too, unless `allow_empty` (a drop
    folder on a quiet day)."""
    path = Path(source).expanduser()
    if not str(source).strip():
        raise ScoringInputError("no input given")
    if not path.exists():
        raise ScoringInputError(f"input {source}: no such file or folder")
    if path.is_file():
        _format(path)
        return [path]
    files = sorted((p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")),
                   key=lambda p: p.name)
    unknown = [p.name for p in files if p.suffix.lower() not in FORMATS]
    if unknown:
        raise ScoringInputError(f"input folder {source} holds files of unknown format: "
                                f"{', '.join(unknown[:5])} (use {_KNOWN})")
    if not files and not allow_empty:
        raise ScoringInputError(f"input folder {source} holds no {_KNOWN} file")
    return files


def _columns(path: Path) -> list[str]:
    """Column names, reading as little as the format allows."""
    fmt = _format(path)
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq
            return list(pq.read_schema(path).names)
        import pandas as pd
        if fmt == "csv":
            return [str(c) for c in pd.read_csv(path, nrows=0).columns]
        with open(path, encoding="utf-8") as f:
            first = next((line for line in f if line.strip()), None)
        if first is None:
            return []
        import io
        return [str(c) for c in pd.read_json(io.StringIO(first), lines=True).columns]
    except ScoringInputError:
        raise
    except Exception as e:
        reason = " ".join(str(e).split())[:200] or type(e).__name__
        raise ScoringInputError(f"input {path}: unreadable as {fmt} ({reason})") from None


def check_inputs(source: str | Path, text_column: str, id_column: Optional[str] = None,
                 only: Optional[list[str]] = None) -> InputPlan:
    """The files of `source`, each checked to hold the text column (and the id column); with
    `only`, just those files are checked (and planned)."""
    files = input_files(source) if only is None else [Path(f) for f in only]
    for path in files:
        cols = _columns(path)
        for what, col in (("text", text_column), ("id", id_column)):
            if col is not None and col not in cols:
                shown = ", ".join(cols[:10]) or "none"
                raise ScoringInputError(f"input {path} has no {what} column {col!r} "
                                        f"(columns: {shown})")
    return InputPlan(tuple(str(p) for p in files), text_column, id_column)


def check_new_inputs(files: list[str], text_column: str, id_column: Optional[str],
                     on_bad_file: str) -> None:
    """The columns of the new files of a folder output, from schemas and headers. A file's
    problem stops the run here with `on_bad_file=stop`; otherwise it is that file's (skipped
    and recorded when read), unless every new file has it: then it is the setting that is
    wrong (a mistyped --text-column), and the run stops in one line."""
    problems = []
    for f in files:
        try:
            check_inputs(f, text_column, id_column, only=[f])
        except ScoringInputError as e:
            if on_bad_file == "stop":
                raise
            problems.append(e)
    if files and len(problems) == len(files):
        raise problems[0]


def decoded(path: Path) -> str:
    """The file's text, strictly UTF-8 (a byte-order mark allowed); an undecodable byte is a
    one-line error naming the file and the byte's offset."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        bad = data[e.start:e.start + 4]
        raise ScoringInputError(f"input {path}: not UTF-8 at byte offset {e.start} "
                                f"({bad!r}: {e.reason})") from None


def _read_one(path: Path, text_column: str, id_column: Optional[str]):
    import io

    import pandas as pd
    cols = [text_column] + ([id_column] if id_column else [])
    fmt = _format(path)
    if fmt == "parquet":
        df = pd.read_parquet(path, columns=cols)
    elif fmt == "csv":
        # Texts as written: an empty field is an empty text (not NaN), and a review that
        # reads "NA" or "null" is a review. Ids keep pandas' usual parsing. Decoded first, so
        # that a bad byte is named with its offset rather than as a parser error.
        df = pd.read_csv(io.StringIO(decoded(path)), usecols=cols, dtype={text_column: object},
                         keep_default_na=False, na_values={id_column: ["", "NA"]}
                         if id_column else {})
    else:
        # dtype=False: ids and texts as written, never coerced to dates or numbers.
        df = pd.read_json(io.StringIO(decoded(path)), lines=True, dtype=False)
        missing = [c for c in cols if c not in df.columns]
        if missing:  # a later line's keys are not the first line's
            raise ScoringInputError(f"input {path} has no column {missing[0]!r} in any row")
        df = df[cols]
    return df


def read_file(path: str | Path, text_column: str, id_column: Optional[str] = None):
    """One file's rows, as stored: a DataFrame with the key column (the id column, or `row`:
    the 0-based position in this file) and `text`. Any failure is a ScoringInputError naming
    the file (and, for a bad byte, its offset)."""
    import pandas as pd
    path = Path(path)
    try:
        df = _read_one(path, text_column, id_column)
    except ScoringInputError:
        raise
    except KeyError as e:
        raise ScoringInputError(f"input {path} has no column {e}") from None
    except Exception as e:
        reason = " ".join(str(e).split())[:200] or type(e).__name__
        if "usecols" in reason or "not in list" in reason:
            reason = f"no column {text_column!r}" + (f" or {id_column!r}" if id_column else "")
        raise ScoringInputError(f"input {path}: unreadable ({reason})") from None
    key_column = id_column or ROW_COLUMN
    key = df[id_column] if id_column else pd.RangeIndex(len(df))
    return pd.DataFrame({key_column: key, "text": df[text_column].astype(object)})


def read_inputs(plan: InputPlan):
    """Every row of the plan's files, in order: a DataFrame with the key column (the id column,
    or `row`: the 0-based position across all files) and `text`, the values as stored."""
    import pandas as pd
    frames = []
    for name in plan.files:
        try:
            frames.append(_read_one(Path(name), plan.text_column, plan.id_column))
        except ScoringInputError:
            raise
        except Exception as e:
            reason = " ".join(str(e).split())[:200] or type(e).__name__
            raise ScoringInputError(f"input {name}: unreadable ({reason})") from None
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=[plan.text_column])
    key = df[plan.id_column] if plan.id_column else pd.RangeIndex(len(df))
    return pd.DataFrame({plan.key_column: key, "text": df[plan.text_column].astype(object)})
