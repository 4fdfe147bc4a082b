"""Prepare raw data as the schema declares, before validation.

Three steps, all set in params.yaml's ``schema``: trim spaces around text values
(``strip_strings``); read the missing-value markers (``missing_values`` everywhere, a
column's ``missing`` there) as missing values; map the target to 1 for its positive
label (``positive``) and 0 for the other label.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
from pandas.api.types import is_bool, is_bool_dtype, is_numeric_dtype

from modelops.data.validation import DataValidationError, Violation
from modelops.schema import ColumnSpec, ColumnType, Role, Schema

MAX_LABELS = 10  # labels listed in an error message


def prepare(frame: pd.DataFrame, schema: Schema, *, source: str = "data") -> pd.DataFrame:
    """A prepared copy of ``frame`` (its ``attrs`` kept); DataValidationError when the
    target does not hold two labels, one of them the positive label."""
    prepared = frame.copy()
    for name, spec in schema.columns.items():
        if name in prepared.columns:
            prepared[name] = _clean(prepared[name], spec, schema)
    if schema.target in prepared.columns:
        target = schema.columns[schema.target]
        prepared[schema.target] = _binary(prepared[schema.target], target, schema.target, source)
    return prepared


def _clean(values: pd.Series, spec: ColumnSpec, schema: Schema) -> pd.Series:
    """Trimmed text, markers as missing values; numbers from text where all parse; text
    from numbers where the schema declares text (an integer id, categories '1', '2')."""
    markers = {*schema.missing_values, *spec.missing}
    textual = spec.type in (ColumnType.STRING, ColumnType.CATEGORY) and spec.role != Role.TARGET
    if is_numeric_dtype(values) and not is_bool_dtype(values) and textual:
        values = values.map(lambda v: v if pd.isna(v) else _text(v)).astype(object)
    elif is_numeric_dtype(values) and not is_bool_dtype(values):
        numbers = [number for marker in markers if (number := _float(marker)) is not None]
        return values.mask(values.isin(numbers)) if numbers else values
    if not (
        values.dtype == object or isinstance(values.dtype, pd.StringDtype | pd.CategoricalDtype)
    ):
        return values  # bool, datetime: no text to clean
    values = values.astype(object)
    if schema.strip_strings:
        values = values.map(lambda v: v.strip() if isinstance(v, str) else v)
        markers = {marker.strip() for marker in markers}
    values = values.mask(values.map(lambda v: isinstance(v, str) and v in markers))
    if spec.type in (ColumnType.INT, ColumnType.FLOAT):
        try:
            return pd.to_numeric(values)
        except (TypeError, ValueError):
            pass  # validation names the values that are not numbers
    if spec.type == ColumnType.BOOL and spec.role != Role.TARGET:
        flags = values.map(lambda v: v if pd.isna(v) else _boolean(v))  # "true", "0"...
        return flags.astype(bool) if flags.map(lambda v: isinstance(v, bool)).all() else flags
    return values


def _float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def _integer(value: Any) -> int | str:
    number = _float(_text(value))
    return int(number) if number is not None and number.is_integer() else _text(value)


def _boolean(value: Any) -> bool | str:
    if is_bool(value):
        return bool(value)
    words = {"true": True, "1": True, "false": False, "0": False}
    return words.get(_text(value).lower(), _text(value))


LABEL: dict[ColumnType, Callable[[Any], Any]] = {
    ColumnType.INT: _integer,
    ColumnType.BOOL: _boolean,
    ColumnType.STRING: _text,
    ColumnType.CATEGORY: _text,
}


def _binary(values: pd.Series, spec: ColumnSpec, name: str, source: str) -> pd.Series:
    """1 where the label is the positive label, 0 where it is the other; missing stays."""
    label: Callable[[Any], Any] = LABEL.get(spec.type, _text)
    positive = label(spec.positive_label)
    present = values.notna()
    labels = values[present].map(label)
    found = sorted(set(labels), key=str)
    problem = ""
    if len(found) > 2:
        problem = "more than two labels"
    elif positive not in found:
        problem = "the positive label never occurs"
    if problem:
        listed = found[:MAX_LABELS] + (["..."] if len(found) > MAX_LABELS else [])
        rule = (
            f"{problem}: found {len(found)} ({', '.join(map(repr, listed))}), positive label "
            f"{positive!r} (schema.columns.{name}.positive); the target needs the positive "
            "label and one other"
        )
        raise DataValidationError(source, len(values), [Violation(name, rule, 0, [])])
    binary = labels.eq(positive).astype("int64").reindex(values.index)
    return binary if present.all() else binary.astype("Int64")
