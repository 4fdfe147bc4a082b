"""Split integrity: what the model was really trained on, and whether the holdout is
apart from it. The facts the integrity gate judges and the report shows, for this
branch (``measure``) and for the base branch's champion (``measure_base``).

``measure`` is cheap: it reads the row counts from the Parquet metadata and only the
id and time columns of the train and holdout parts (and the columns a declared
``model.fit_rows.query`` names), the validated row count from metrics/data.json and the
fitted rows from the train stage's record (metrics/train.json). It judges nothing.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import yaml

from modelops import paths
from modelops.config import FitRowsSettings, Settings, read_params
from modelops.errors import InputError
from modelops.io import read_json
from modelops.training.train import query_rows, sample_size

log = logging.getLogger(__name__)

EXAMPLES = 5  # shared ids listed at most
BASE = paths.CHAMPION / "base"  # where `make champion` copies the base commit's files


def _json(path: Path) -> dict[str, Any] | None:
    """A JSON object from a file, or None when it is absent or not one."""
    try:
        data = read_json(path)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _count(value: Any) -> int | None:
    """An int from a record (bool and other types are not counts)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _time(value: Any) -> str | None:
    """A time as lineage.json writes it (``str`` of a pandas Timestamp); None for none."""
    return None if value is None or pd.isna(value) else str(value)


def query_columns(query: str | None, columns: list[str]) -> list[str]:
    """The ``columns`` a ``DataFrame.query`` names (plainly or in backticks)."""
    if query is None:
        return []
    names = set(re.findall(r"`([^`]+)`", query)) | set(re.findall(r"[A-Za-z_]\w*", query))
    return [c for c in columns if c in names]


def _read_part(path: Path, columns: list[str]) -> tuple[int, pd.DataFrame] | None:
    """The row count (from the Parquet metadata) and those of ``columns`` the file has;
    None when the file is absent."""
    if not path.exists():
        return None
    names = pq.read_schema(path).names
    rows = pq.ParquetFile(path).metadata.num_rows
    return rows, pd.read_parquet(path, columns=[c for c in dict.fromkeys(columns) if c in names])


def _part(read: tuple[int, pd.DataFrame] | None, time: str | None) -> dict[str, Any]:
    """Rows and time range of a part."""
    if read is None:
        return {"rows": None, "time_min": None, "time_max": None}
    rows, frame = read
    times = frame[time].dropna() if time and time in frame else frame.iloc[:0, :0]
    return {
        "rows": int(rows),
        "time_min": _time(times.min()) if len(times) else None,
        "time_max": _time(times.max()) if len(times) else None,
    }


def expected_fitted_rows(
    train: pd.DataFrame | None, train_rows: int | None, fit_rows: FitRowsSettings
) -> int | None:
    """The rows ``model.fit_rows`` leaves of the train part: all of them, or those its
    query keeps, then its sample's share. None when the query cannot be applied to the
    columns read (the train stage fails on it too)."""
    if train_rows is None:
        return None
    kept = train_rows
    if fit_rows.query is not None:
        if train is None:
            return None
        try:
            kept = len(query_rows(train, fit_rows.query))
        except InputError as exc:
            log.warning("integrity: %s", exc)
            return None
    return sample_size(kept, fit_rows.sample)


def measure(settings: Settings, root: Path = Path()) -> dict[str, Any]:
    """The split-integrity facts of this branch's pipeline outputs under ``root``
    (JSON-ready). A part whose file is absent has ``rows`` None; ``shared_ids`` is None
    without an id column, ``time_overlap_rows`` None without a time column (or data);
    ``fitted_rows`` is None when the train stage recorded none."""
    schema = settings.data_schema
    id_column, time = schema.id_column, schema.time_column
    fit_rows = settings.model.fit_rows
    train_path = root / paths.TRAIN
    names = pq.read_schema(train_path).names if train_path.exists() else []
    keys = [c for c in (id_column, time) if c]
    train_read = _read_part(train_path, keys + query_columns(fit_rows.query, names))
    holdout_read = _read_part(root / paths.HOLDOUT, keys)
    train, holdout = _part(train_read, time), _part(holdout_read, time)
    empty = pd.DataFrame()
    train_frame = train_read[1] if train_read else empty
    holdout_frame = holdout_read[1] if holdout_read else empty

    def in_both(column: str | None) -> bool:
        return column is not None and column in train_frame and column in holdout_frame

    shared, examples = None, []
    if id_column is not None and in_both(id_column):
        ids = holdout_frame[id_column]
        both = ids[ids.isin(train_frame[id_column])].drop_duplicates()
        shared, examples = len(both), [str(v) for v in both.head(EXAMPLES)]
    overlap = None
    if time is not None and in_both(time):
        first = holdout_frame[time].min()  # NaT for an empty holdout: no overlap
        overlap = 0 if pd.isna(first) else int((train_frame[time] >= first).sum())

    validated = _json(root / paths.VALIDATION_REPORT) or {}
    record = _json(root / paths.TRAIN_RECORD) or {}
    return {
        "validated_rows": _count(validated.get("rows")),
        "train": train,
        "holdout": holdout,
        "id_column": id_column,
        "shared_ids": shared,
        "shared_id_examples": examples,
        "time_column": time,
        "time_overlap_rows": overlap,
        "fitted_rows": _count(record.get("fitted_rows")),
        "expected_fitted_rows": expected_fitted_rows(
            train_read[1] if train_read else None, train["rows"], fit_rows
        ),
        "fit_rows": fit_rows.model_dump(mode="json"),
    }


def _mapping(value: Any, *keys: str) -> dict[str, Any]:
    """``value[k1][k2]...`` when each is a mapping, else an empty one."""
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return value if isinstance(value, dict) else {}


def _role_column(params: dict[str, Any] | None, role: str) -> str | None:
    """The column of ``schema.columns`` with ``role`` in a raw params mapping."""
    columns = _mapping(params, "schema", "columns")
    found = [n for n, spec in columns.items() if _mapping(spec).get("role") == role]
    return str(found[0]) if len(found) == 1 else None


def _base_fit_rows(params: dict[str, Any] | None) -> FitRowsSettings | None:
    """The base's ``model.fit_rows`` (the defaults, every row, before it existed); None
    when the base's params cannot say."""
    if params is None:
        return None
    declared = _mapping(params, "model", "fit_rows")
    try:
        return FitRowsSettings.model_validate(declared)
    except ValueError:
        return None


def measure_base(base_dir: Path = BASE) -> dict[str, Any]:
    """The same facts for the base branch's champion, from the files `make champion`
    copied from the base commit (params.yaml, metrics/data.json, metrics/train.json,
    models/lineage.json). Without its data there are no shared ids or overlap counts
    (None), and an absent file leaves its facts None."""
    try:
        params = read_params((base_dir / "params.yaml").read_text())
    except (OSError, yaml.YAMLError):
        params = None
    params = params if isinstance(params, dict) else None
    lineage = _mapping(_json(base_dir / paths.LINEAGE), "data")
    validated = _json(base_dir / paths.VALIDATION_REPORT) or {}
    record = _json(base_dir / paths.TRAIN_RECORD) or {}
    parts = {}
    for name in ("train", "holdout"):
        part = _mapping(lineage, name)
        parts[name] = {
            "rows": _count(part.get("rows")),
            "time_min": part.get("time_min"),
            "time_max": part.get("time_max"),
        }
    if parts["train"]["rows"] is None:
        parts["train"]["rows"] = _count(record.get("train_rows"))
    fit_rows = _base_fit_rows(params)
    expected = None
    if fit_rows is not None and fit_rows.query is None and parts["train"]["rows"] is not None:
        expected = sample_size(parts["train"]["rows"], fit_rows.sample)
    elif fit_rows is not None:  # a query: what the base's train stage selected with it
        expected = _count(record.get("selected_rows"))
    return {
        "validated_rows": _count(validated.get("rows")),
        "train": parts["train"],
        "holdout": parts["holdout"],
        "id_column": _role_column(params, "id"),
        "shared_ids": None,
        "shared_id_examples": [],
        "time_column": _role_column(params, "time"),
        "time_overlap_rows": None,
        "fitted_rows": _count(record.get("fitted_rows")),
        "expected_fitted_rows": expected,
        "fit_rows": None if fit_rows is None else fit_rows.model_dump(mode="json"),
    }
