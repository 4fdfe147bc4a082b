"""Infer a schema (``schema.columns`` of params.yaml) from a data file, for ``modelops adopt``.

Each column gets a type, a role, nullability, a range with a margin or its categories,
and a note that says what was seen, so a person can review it. Written here rather than
with pandera's ``infer_schema``: pandera reads a numeric column with blank strings as
``object`` and a Yes/No column as ``object`` too, with no categories, no missing-value
markers and no roles (bench/results/schema_inference.md compares the two).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import pandas as pd

from modelops.errors import InputError

MAX_CATEGORIES = 100  # more distinct values than this: free text or an identifier
# Ranges are widened by this share of the observed span on each side (never below 0 for
# non-negative data): validation guards against impossible values, not new extremes of
# long-tailed columns (bench/results/schema_inference.md); drift monitoring watches shifts.
MARGIN = 1.0
TIME_NAMES = re.compile(r"(^|_)(time|timestamp|date|datetime|event_time|created_at)$", re.I)
ID_NAMES = re.compile(r"(?i:(^|_)(id|no|number|key)$)|[a-z](ID|Id|No|Number)$")
YES_LIKE = {"yes", "y", "true", "t", "1", "positive", "pos"}
NO_LIKE = {"no", "n", "false", "f", "0", "negative", "neg"}
WIDENED = f" (range widened by {MARGIN:.0%} of it each side)"
NUMERIC_SHARE = 0.95  # a text column this numeric is numbers with a few missing markers


class InferenceError(InputError):
    """The data cannot be described by a schema as asked."""


@dataclass
class Inferred:
    """The inferred ``schema.columns`` (YAML-ready), a note per column, and findings."""

    columns: dict[str, dict[str, Any]]
    notes: dict[str, str]
    positive_label: Any = None
    negative_label: Any = None
    yes_no_target: bool = False


def _text(values: pd.Series) -> pd.Series:
    """Non-missing values as trimmed strings."""
    return values.dropna().astype(str).str.strip()


def _numeric_with_markers(values: pd.Series) -> tuple[pd.Series, list[str]] | None:
    """A text column that holds numbers plus a few missing-value markers (blank, '?')."""
    text = _text(values)
    if text.empty:
        return None
    numbers = pd.to_numeric(text, errors="coerce")
    if numbers.notna().mean() < NUMERIC_SHARE or numbers.notna().sum() == 0:
        return None
    markers = sorted(set(text[numbers.isna()]))
    if len(markers) > 3:
        return None
    return numbers.dropna(), markers


def _bounds(values: pd.Series, integral: bool) -> tuple[float, float]:
    low, high = float(values.min()), float(values.max())
    pad = (high - low) * MARGIN
    lower, upper = low - pad, high + pad
    if low >= 0:
        lower = max(lower, 0.0)
    if integral:
        return float(math.floor(lower)), float(math.ceil(upper))
    return float(f"{lower:.6g}"), float(f"{upper:.6g}")


def _number_spec(values: pd.Series, integral: bool) -> dict[str, Any]:
    low, high = _bounds(values, integral)
    if integral:
        return {"type": "int", "min": int(low), "max": int(high)}
    return {"type": "float", "min": low, "max": high}


def _is_time(values: pd.Series) -> bool:
    if pd.api.types.is_datetime64_any_dtype(values):
        return True
    text = _text(values)
    if text.empty or pd.api.types.is_numeric_dtype(values):
        return False
    parsed = pd.to_datetime(text.head(1000), errors="coerce", format="mixed")
    return bool(parsed.notna().all())


def _label_pair(values: pd.Series, positive: str | None, name: str) -> tuple[Any, Any, bool]:
    """The positive and negative labels of a binary target; whether they read yes/no."""
    labels = [v.item() if hasattr(v, "item") else v for v in pd.unique(values.dropna())]
    if len(labels) != 2:
        shown = sorted(map(str, labels))[:10]
        raise InferenceError(
            f"target '{name}' has {len(labels)} distinct values {shown}: a binary target "
            "needs exactly two"
        )
    as_text = {str(v).strip(): v for v in labels}
    if positive is not None:
        if positive not in as_text:
            raise InferenceError(
                f"POSITIVE={positive!r} is not a label of target '{name}' "
                f"(labels: {sorted(as_text)})"
            )
        pos = as_text[positive]
    else:
        yes = [v for t, v in as_text.items() if t.lower() in YES_LIKE]
        if len(yes) != 1:
            raise InferenceError(
                f"target '{name}' has labels {sorted(as_text)}: say which is the positive "
                "class with POSITIVE=<label>"
            )
        pos = yes[0]
    neg = next(v for v in labels if v is not pos and v != pos)
    yes_no = {str(pos).strip().lower(), str(neg).strip().lower()} <= YES_LIKE | NO_LIKE
    return pos, neg, yes_no


def _target_spec(values: pd.Series, pos: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"role": "target"}
    if pd.api.types.is_bool_dtype(values):
        return {"type": "bool", **spec, "positive": bool(pos)}
    if pd.api.types.is_integer_dtype(values):
        return {"type": "int", **spec, "positive": int(pos)}
    if pd.api.types.is_float_dtype(values):
        return {"type": "int", **spec, "positive": int(pos)}
    return {"type": "string", **spec, "positive": str(pos).strip()}


def _count(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def infer(
    frame: pd.DataFrame,
    *,
    target: str,
    positive: str | None = None,
    time: str | None = None,
    id_column: str | None = None,
) -> Inferred:
    """Describe every column of ``frame``; the roles come from the arguments or from
    obvious names (a unique ``*_id`` column, a single date column named like a time)."""
    for role, name in (("TARGET", target), ("TIME", time), ("ID", id_column)):
        if name is not None and name not in frame.columns:
            raise InferenceError(
                f"{role}={name!r} is not a column of the data (columns: {list(frame.columns)})"
            )
    rows = len(frame)
    pos, neg, yes_no = _label_pair(frame[target], positive, target)
    if time is None:
        named = [c for c in frame.columns if c != target and TIME_NAMES.search(str(c))]
        times = [c for c in named if _is_time(frame[c])]
        time = times[0] if len(times) == 1 else None
    if id_column is None:
        ids = [
            c
            for c in frame.columns
            if c not in (target, time)
            and ID_NAMES.search(str(c))
            and frame[c].notna().all()
            and frame[c].is_unique
        ]
        id_column = ids[0] if len(ids) == 1 else None
    result = Inferred({}, {}, positive_label=pos, negative_label=neg, yes_no_target=yes_no)
    for name in frame.columns:
        values = frame[name]
        missing = int(values.isna().sum())
        if name == target:
            result.columns[name] = _target_spec(values, pos)
            result.notes[name] = f"target: {pos!r} is the positive class, {neg!r} the negative"
            continue
        if name == time:
            result.columns[name] = {"type": "datetime", "role": "time"}
            result.notes[name] = "time: the latest split.holdout_weeks weeks are the holdout"
            continue
        if name == id_column:
            kind = "int" if pd.api.types.is_integer_dtype(values) else "string"
            result.columns[name] = {"type": "string", "role": "id"}
            result.notes[name] = f"id: unique per row ({kind} values read as text)"
            continue
        spec, note = _column(values, rows)
        if values.dtype == object:
            text = values.astype("string").str.strip()
            markers = ["", *spec.get("missing", [])]
            missing += int(text.isin(markers).sum())
        if missing:
            spec["nullable"] = True
            note += f"; {_count(missing, 'missing value')}"
        result.columns[name] = spec
        result.notes[name] = note
    return result


def _column(values: pd.Series, rows: int) -> tuple[dict[str, Any], str]:
    """The spec and note of one column that is not the target, time or id."""
    if (_text(values) == "").all():  # nothing but missing values and blanks
        return {"type": "string", "role": "ignore", "nullable": True}, "empty: ignored"
    if pd.api.types.is_bool_dtype(values):
        return {"type": "bool"}, "true/false"
    if pd.api.types.is_integer_dtype(values) or (
        pd.api.types.is_float_dtype(values)
        and values.dropna().size
        and (values.dropna() % 1 == 0).all()
        and values.isna().any()
    ):
        present = values.dropna()
        spec = _number_spec(present, integral=True)
        return spec, f"int, {present.min():g} to {present.max():g} seen{WIDENED}"
    if pd.api.types.is_float_dtype(values):
        present = values.dropna()
        spec = _number_spec(present, integral=False)
        return spec, f"float, {present.min():g} to {present.max():g} seen{WIDENED}"
    numeric = _numeric_with_markers(values)
    if numeric is not None:
        numbers, markers = numeric
        integral = bool((numbers % 1 == 0).all())
        spec = _number_spec(numbers, integral)
        if [m for m in markers if m]:
            spec["missing"] = [m for m in markers if m]
        shown = ", ".join(repr(m) if m else "blank" for m in markers) or "none"
        kind = "int" if integral else "float"
        return spec, (
            f"{kind} stored as text, {numbers.min():g} to {numbers.max():g} seen; "
            f"missing markers: {shown}"
        )
    if _is_time(values):
        return {"type": "datetime", "role": "ignore"}, "date/time: ignored (not a feature)"
    text = _text(values)
    distinct = sorted(set(text) - {""})
    if len(distinct) <= MAX_CATEGORIES and len(distinct) < max(2, rows // 2):
        return (
            {"type": "category", "categories": distinct},
            f"category, {len(distinct)} values",
        )
    return (
        {"type": "string", "role": "ignore"},
        f"text with {len(distinct):,} distinct values: ignored (an identifier or free text?)",
    )
