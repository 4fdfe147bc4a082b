"""Raw-data sources: the seam a team replaces to bring its own data.

A source is a function ``(path) -> DataFrame`` registered under a name. Built in:
``files`` reads a CSV or Parquet file, or a folder of them (concatenated in name
order, so weekly batches stay in time order). To add another (a warehouse query
snapshot, say), register a reader and set ``data.source`` in params.yaml; the
simulator writes Parquet batches, so it is read by ``files`` too.

``files`` records where each row came from in ``frame.attrs[ORIGIN]`` so that
validation can name the file and line of a bad value (``locate``).
"""

from __future__ import annotations

from collections.abc import Callable
from numbers import Integral
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd

from modelops.errors import InputError

Reader = Callable[[Path], pd.DataFrame]
SOURCES: dict[str, Reader] = {}
SUFFIXES = (".parquet", ".csv")
ORIGIN = "origin"  # frame.attrs key: a list of Span


class Span(NamedTuple):
    """The rows labelled ``first`` to ``first + rows - 1`` came from ``file``, in order."""

    file: str
    first: int
    rows: int


class SourceError(InputError):
    """Raw data cannot be found or read."""


def register(name: str) -> Callable[[Reader], Reader]:
    """Decorator: make a reader available as ``data.source: <name>``."""

    def add(reader: Reader) -> Reader:
        SOURCES[name] = reader
        return reader

    return add


def _read_one(path: Path) -> pd.DataFrame:
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    if path.suffix == ".csv":
        # Cells as written: the schema's missing-value markers say what is missing
        # (pandas would also read "NA", "null", "n/a", ... as missing).
        return pd.read_csv(path, keep_default_na=False)
    raise SourceError(f"{path}: unsupported file type '{path.suffix}' (use {SUFFIXES})")


@register("files")
def read_files(path: Path) -> pd.DataFrame:
    """A CSV/Parquet file or a folder of them, concatenated in file-name order."""
    if not path.exists():
        raise SourceError(f"{path}: no such file or folder (run `make data` to get it)")
    files = [path] if path.is_file() else sorted(p for p in path.iterdir() if p.suffix in SUFFIXES)
    if not files:
        raise SourceError(f"{path}: folder holds no {' or '.join(SUFFIXES)} files")
    parts = [_read_one(p) for p in files]
    frame = pd.concat(parts, ignore_index=True)
    spans, first = [], 0
    for file, part in zip(files, parts, strict=True):
        spans.append(Span(str(file), first, len(part)))
        first += len(part)
    frame.attrs[ORIGIN] = spans
    return frame


def locate(frame: pd.DataFrame, label: Any) -> str | None:
    """Where the row labelled ``label`` was read: ``data/a.csv line 12`` (line 1 is the
    header; one line per row assumed) or ``data/a.parquet row 3``; None if not recorded."""
    if not isinstance(label, Integral):
        return None
    for file, first, rows in frame.attrs.get(ORIGIN, ()):
        if first <= label < first + rows:
            offset = int(label) - first
            return (
                f"{file} line {offset + 2}" if file.endswith(".csv") else f"{file} row {offset + 1}"
            )
    return None


# The simulator stores weekly Parquet batches, read like any folder of files.
SOURCES["simulator"] = read_files


def read_raw(source: str, path: Path) -> pd.DataFrame:
    """Read raw data with the named source."""
    try:
        reader = SOURCES[source]
    except KeyError:
        raise SourceError(f"unknown data.source '{source}' (known: {sorted(SOURCES)})") from None
    return reader(path)
