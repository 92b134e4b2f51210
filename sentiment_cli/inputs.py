"""Checks of what the user named on the command line, made before any heavy import, model
load or server start, so that a typo costs one line and exit status 2, not a traceback."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Optional


class UsageError(ValueError):
    """A bad option or path: `main` prints it as one line and exits with status 2."""


# Hub dataset ids are owner/name; anything else that is not on disk is a mistyped path.
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


def check_data(source: str) -> None:
    if Path(source).expanduser().exists() or _HUB_ID.fullmatch(source):
        return
    raise UsageError(f"--data {source}: does not exist (give a folder of train/test parquet "
                     "files, an aclImdb folder or .tar.gz, or a Hub id such as stanfordnlp/imdb)")


def read_texts(texts: list[str], file: Optional[str]) -> Optional[list[str]]:
    """The texts to predict: TEXT arguments, or one text per line of `file` ('-': stdin).
    A single '-' argument reads stdin too. None: nothing given (the caller's examples)."""
    if texts == ["-"]:
        texts, file = [], "-"
    if "-" in texts:
        raise UsageError("'-' (read stdin) must be the only TEXT")
    if texts and file:
        raise UsageError("give TEXT arguments or --file, not both")
    if not file:
        return texts or None
    if file == "-":
        lines, where = sys.stdin.read().splitlines(), "stdin"
    else:
        path = Path(file).expanduser()
        if not path.is_file():
            raise UsageError(f"--file {file}: no such file")
        try:
            lines, where = path.read_text(encoding="utf-8").splitlines(), str(path)
        except UnicodeDecodeError as e:
            raise UsageError(f"--file {file}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    found = [line for line in lines if line.strip()]  # blank lines separate nothing
    if not found:
        raise UsageError(f"no text to predict on {where}")
    return found
