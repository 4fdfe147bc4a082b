"""Raw-data sources: the seam a team replaces to bring its own data.

A source is a function ``(path) -> DataFrame`` registered under a name. Built in:
``files`` reads a CSV or Parquet file, or a folder of them (concatenated in name
order, so weekly batches stay in time order). To add another (a warehouse query
snapshot, say), register a reader and set ``data.source`` in params.yaml; the
simulator writes Parquet batches, so it is read by ``files`` too.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from modelops.errors import InputError

Reader = Callable[[Path], pd.DataFrame]
SOURCES: dict[str, Reader] = {}
SUFFIXES = (".parquet", ".csv")


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
        return pd.read_csv(path)
    raise SourceError(f"{path}: unsupported file type '{path.suffix}' (use {SUFFIXES})")


@register("files")
def read_files(path: Path) -> pd.DataFrame:
    """A CSV/Parquet file or a folder of them, concatenated in file-name order."""
    if not path.exists():
        raise SourceError(f"{path}: no such file or folder (run `make data` to get it)")
    if path.is_file():
        return _read_one(path)
    files = sorted(p for p in path.iterdir() if p.suffix in SUFFIXES)
    if not files:
        raise SourceError(f"{path}: folder holds no {' or '.join(SUFFIXES)} files")
    return pd.concat([_read_one(p) for p in files], ignore_index=True)


# The simulator stores weekly Parquet batches, read like any folder of files.
SOURCES["simulator"] = read_files


def read_raw(source: str, path: Path) -> pd.DataFrame:
    """Read raw data with the named source."""
    try:
        reader = SOURCES[source]
    except KeyError:
        raise SourceError(f"unknown data.source '{source}' (known: {sorted(SOURCES)})") from None
    return reader(path)
