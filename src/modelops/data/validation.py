"""Validate raw data against the schema (pandera) and explain every broken rule.

The pandera schema is derived from ``modelops.schema.Schema``; on top of it run two
checks pandera has no rule for: label leakage (a single feature that predicts the
target almost perfectly) and a target that has both classes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors
from sklearn.metrics import roc_auc_score

from modelops.errors import InputError
from modelops.schema import PANDAS_DTYPES, ColumnSpec, ColumnType, Schema

MAX_EXAMPLES = 5


@dataclass(frozen=True)
class Violation:
    """One broken rule: which column, which rule, how many rows, a few examples."""

    column: str
    rule: str
    rows: int
    examples: list[str]

    def __str__(self) -> str:
        where = f"column '{self.column}'" if self.column else "table"
        details = []
        if self.rows:
            details.append(f"{self.rows:,} row{'s' if self.rows != 1 else ''}")
        if self.examples:
            details.append(f"e.g. {'; '.join(self.examples)}")
        return f"{where}, rule '{self.rule}'" + (": " + ", ".join(details) if details else "")


class DataValidationError(InputError):
    """The data breaks the schema; ``violations`` lists every broken rule."""

    def __init__(self, source: str, rows: int, violations: list[Violation]) -> None:
        self.violations = violations
        lines = "\n".join(f"  - {v}" for v in violations)
        super().__init__(
            f"data validation failed for {source} ({rows:,} rows): "
            f"{len(violations)} rule(s) broken\n{lines}"
        )


def _pandera_column(name: str, spec: ColumnSpec, schema: Schema, now: dt.datetime) -> pa.Column:
    checks: list[pa.Check] = []
    if spec.min is not None:
        checks.append(pa.Check.ge(spec.min))
    if spec.max is not None:
        checks.append(pa.Check.le(spec.max))
    if spec.categories and schema.unknown_categories == "error":
        checks.append(pa.Check.isin(list(spec.categories)))
    if spec.allowed is not None:
        checks.append(pa.Check.isin(list(spec.allowed)))
    if spec.type == ColumnType.DATETIME:
        limit = pd.Timestamp(now)
        checks.append(pa.Check(lambda s: s <= limit, name=f"not_after({limit:%Y-%m-%d %H:%M})"))
    dtype = PANDAS_DTYPES[spec.type]
    if spec.type == ColumnType.INT and spec.nullable:
        dtype = "Int64"
    return pa.Column(
        dtype,
        checks=checks,
        nullable=spec.nullable,
        unique=name == schema.id_column,
        # Booleans are never coerced: astype(bool) would turn the string "False" into True.
        coerce=spec.type != ColumnType.BOOL,
        required=True,
    )


def pandera_schema(schema: Schema, now: dt.datetime) -> pa.DataFrameSchema:
    """The pandera form of the contract (strict: undeclared columns are errors)."""
    return pa.DataFrameSchema(
        {name: _pandera_column(name, spec, schema, now) for name, spec in schema.columns.items()},
        strict=True,
        ordered=False,
    )


def _describe(frame: pd.DataFrame, index: Any, value: Any, id_column: str | None) -> str:
    if index is None or pd.isna(index):
        return repr(value)
    ident = ""
    if id_column and id_column in frame.columns and index in frame.index:
        ident = f" ({id_column}={frame.loc[index, id_column]})"
    return f"row {index}{ident} value {value!r}"


def _violations_from(errors: SchemaErrors, frame: pd.DataFrame, schema: Schema) -> list[Violation]:
    cases = errors.failure_cases
    # Where a column could not be converted to its type, its other checks only add noise.
    uncoercible = set(
        cases.loc[cases["check"].astype(str).str.startswith("coerce_dtype"), "column"]
    )
    keep = ~cases["column"].isin(uncoercible) | cases["check"].astype(str).str.startswith(
        ("coerce_dtype", "not_nullable")
    )
    cases = cases[keep]
    found: list[Violation] = []
    for (column, check), group in cases.groupby(["column", "check"], sort=False, dropna=False):
        column_name = "" if pd.isna(column) else str(column)
        rule = str(check)
        if rule == "column_in_schema":
            found += [
                Violation(str(v), "declared in schema (params.yaml schema.columns)", 0, [])
                for v in group["failure_case"]
            ]
            continue
        if rule == "column_in_dataframe":
            found += [
                Violation(str(v), "required column present", 0, []) for v in group["failure_case"]
            ]
            continue
        rows = int(group["index"].notna().sum())
        examples = [
            _describe(frame, idx, val, schema.id_column)
            for idx, val in group[["index", "failure_case"]]
            .head(MAX_EXAMPLES)
            .itertuples(index=False)
        ]
        found.append(Violation(column_name, rule, rows, examples))
    return found


def _leakage(frame: pd.DataFrame, schema: Schema) -> list[Violation]:
    target = frame[schema.target].astype(int)
    found: list[Violation] = []
    for name in schema.features:
        values = frame[name]
        if values.nunique(dropna=True) < 2:
            continue  # constant or empty: cannot leak the label
        if schema.columns[name].type == ColumnType.CATEGORY or values.dtype == bool:
            score = target.groupby(values.astype(str)).transform("mean")
        else:
            score = values.astype(float).fillna(values.astype(float).min() - 1)
        auc = roc_auc_score(target, score)
        strength = max(auc, 1 - auc)
        if strength > schema.max_feature_auc:
            found.append(
                Violation(
                    name,
                    f"no label leakage (alone predicts '{schema.target}' with ROC-AUC "
                    f"{strength:.4f} > schema.max_feature_auc {schema.max_feature_auc})",
                    len(frame),
                    [],
                )
            )
    return found


def validate(
    frame: pd.DataFrame, schema: Schema, *, source: str = "data", now: dt.datetime | None = None
) -> pd.DataFrame:
    """Return the data coerced to the schema's types and column order, or raise
    DataValidationError listing every broken rule."""
    now = now or dt.datetime.now()
    if frame.empty:
        raise DataValidationError(source, 0, [Violation("", "at least one row", 0, [])])
    try:
        valid = pandera_schema(schema, now).validate(frame, lazy=True)
    except SchemaErrors as errors:
        raise DataValidationError(
            source, len(frame), _violations_from(errors, frame, schema)
        ) from None
    target = valid[schema.target].astype(int)
    classes = set(np.unique(target))
    if classes != {0, 1}:
        rule = f"target '{schema.target}' has both classes 0 and 1 (found {sorted(classes)})"
        raise DataValidationError(source, len(frame), [Violation(schema.target, rule, 0, [])])
    leaks = _leakage(valid, schema)
    if leaks:
        raise DataValidationError(source, len(frame), leaks)
    return valid[list(schema.columns)].reset_index(drop=True)


def summarize(frame: pd.DataFrame, schema: Schema) -> dict[str, Any]:
    """A small description of validated data, for metrics and lineage."""
    target = frame[schema.target].astype(int)
    summary: dict[str, Any] = {
        "rows": len(frame),
        "columns": frame.shape[1],
        "positives": int(target.sum()),
        "positive_rate": round(float(target.mean()), 6),
    }
    time = schema.time_column
    if time:
        summary["time_min"] = str(frame[time].min())
        summary["time_max"] = str(frame[time].max())
        summary["weeks"] = int(frame[time].dt.to_period("W").nunique())
    return summary
