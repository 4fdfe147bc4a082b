"""Atomic file output: write beside the target, then rename, so readers never see
a half-written file and a failure leaves the previous version in place."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import joblib
import pandas as pd


@contextmanager
def atomic_path(target: Path | str) -> Iterator[Path]:
    """Yield a temporary path; on success it replaces ``target``, on error it is removed."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    tmp.chmod(0o666 & ~_umask())  # mkstemp creates 0600; give outputs the usual mode
    try:
        yield tmp
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _write(target: Path | str, writer: Callable[[Path], object]) -> Path:
    with atomic_path(target) as tmp:
        writer(tmp)
    return Path(target)


def write_parquet(frame: pd.DataFrame, target: Path | str) -> Path:
    """Parquet without the index (deterministic bytes for the same frame)."""
    return _write(target, lambda tmp: frame.to_parquet(tmp, index=False))


def write_csv(frame: pd.DataFrame, target: Path | str) -> Path:
    """CSV without the index."""
    return _write(target, lambda tmp: frame.to_csv(tmp, index=False))


def write_json(data: Any, target: Path | str) -> Path:
    """Indented JSON with a trailing newline."""
    text = json.dumps(data, indent=2, sort_keys=False, default=str) + "\n"
    return _write(target, lambda tmp: tmp.write_text(text))


def write_text(text: str, target: Path | str) -> Path:
    """Plain text."""
    return _write(target, lambda tmp: tmp.write_text(text))


def dump_model(model: Any, target: Path | str) -> Path:
    """A fitted estimator, with joblib."""
    return _write(target, lambda tmp: joblib.dump(model, tmp))


def load_model(path: Path | str) -> Any:
    """Load what ``dump_model`` wrote."""
    return joblib.load(path)


def read_json(path: Path | str) -> Any:
    """Parse a JSON file."""
    return json.loads(Path(path).read_text())
