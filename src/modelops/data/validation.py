"""Validate raw data against the schema (pandera) and explain every broken rule.

The pandera schema is derived from ``modelops.schema.Schema``; on top of it run two
checks pandera has no rule for: label leakage (a single feature that predicts the
target almost perfectly) and a target that has both classes. Run it on prepared data
(``modelops.data.prepare``): the target is checked as int 0/1 whatever its declared type.

Each broken rule is said in plain words with pandera's name in parentheses, and its
examples name the file and line (``sources.locate``) or the row, and the id:
``column 'total': not a number (pandera: coerce_dtype('float64')): 1 row, e.g.
data/a.csv line 12 (id=7590-VHVEG): 'n/a'``.
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

from modelops.data.sources import ORIGIN, locate
from modelops.errors import InputError
from modelops.schema import PANDAS_DTYPES, ColumnSpec, ColumnType, Schema

MAX_EXAMPLES = 5
SHORT = 40  # longer pandera check names lose their arguments in messages
TARGET_VALUES = (0, 1)
NOT_A = {
    "float64": "not a number",
    "int64": "not an integer",
    "Int64": "not an integer",
    "datetime64[ns]": "not a date/time",
    "bool": "not true/false",
}
RULES = {
    "not_nullable": "missing value in a column that is not nullable",
    "field_uniqueness": "duplicated id",
    "column_in_dataframe": "column missing from the data",
    "column_in_schema": "column not declared in schema.columns",
}


@dataclass(frozen=True)
class Violation:
    """One broken rule: which column, the rule in plain words (and the library's name for
    it), how many rows, a few examples."""

    column: str
    rule: str
    rows: int
    examples: list[str]
    check: str = ""

    def __str__(self) -> str:
        where = f"column '{self.column}'" if self.column else "table"
        rule = f"{self.rule} (pandera: {self.check})" if self.check else self.rule
        details = []
        if self.rows:
            details.append(f"{self.rows:,} row{'s' if self.rows != 1 else ''}")
        if self.examples:
            details.append(f"e.g. {'; '.join(self.examples)}")
        return f"{where}: {rule}" + (": " + ", ".join(details) if details else "")


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
    if name == schema.target:  # prepared: 1 for the positive label, 0 for the other
        return pa.Column("int64", checks=[pa.Check.isin(list(TARGET_VALUES))], coerce=True)
    checks: list[pa.Check] = []
    if spec.min is not None:
        checks.append(pa.Check.ge(spec.min))
    if spec.max is not None:
        checks.append(pa.Check.le(spec.max))
    if spec.categories and schema.unknown_categories == "error":
        checks.append(pa.Check.isin(list(spec.categories)))
    if spec.allowed is not None:
        checks.append(pa.Check.isin(list(spec.allowed)))
    if name == schema.time_column:  # other dates (a due date, say) may lie ahead
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


def _number(value: float | None) -> str:
    return str(int(value)) if value is not None and value.is_integer() else str(value)


def _plain_rule(check: str, column: str, schema: Schema) -> str:
    """Pandera's name for a check, e.g. ``coerce_dtype('float64')``, in plain words."""
    kind, _, argument = check.partition("(")
    argument = argument.removesuffix(")")
    spec = schema.columns.get(column)
    if kind in ("coerce_dtype", "dtype"):
        dtype = argument.strip("'")
        return NOT_A.get(dtype, f"not of type {dtype}")
    if spec is not None and kind == "greater_than_or_equal_to":
        return f"below the minimum {_number(spec.min)}"
    if spec is not None and kind == "less_than_or_equal_to":
        return f"above the maximum {_number(spec.max)}"
    if spec is not None and kind == "isin":
        if column != schema.target and spec.categories:
            return f"not one of the categories {list(spec.categories)}"
        allowed = TARGET_VALUES if column == schema.target else spec.allowed
        return f"not one of the allowed values {list(allowed or ())}"
    if kind == "not_after":
        return f"in the future, after {argument}"
    return RULES.get(kind, check)


def _short(check: str) -> str:
    """Pandera's name for a check, its arguments elided when long (the rule names them)."""
    return check if len(check) <= SHORT else check.partition("(")[0] + "(...)"


def _describe(
    frame: pd.DataFrame,
    raw: pd.DataFrame | None,
    column: str,
    index: Any,
    value: Any,
    ident: str | None,
) -> str:
    """``data/a.csv line 12 (id=A7): 'x'``; a missing value as written in ``raw``, if given."""
    if index is None or pd.isna(index):
        return repr(value)
    if isinstance(index, float) and index.is_integer():
        index = int(index)
    where = locate(frame, index) or f"row {index}"
    if ident and ident in frame.columns and index in frame.index:
        where += f" ({ident}={frame.loc[index, ident]})"
    if pd.isna(value) and raw is not None and column in raw.columns and index in raw.index:
        value = raw.loc[index, column]
    if isinstance(value, np.generic):
        value = value.item()
    return where if pd.isna(value) else f"{where}: {value!r}"


def _not_boolean(frame: pd.DataFrame, cases: pd.DataFrame) -> pd.DataFrame:
    """Pandera reports an uncoerced bool column's dtype once; list its non-bool values."""
    whole = cases["check"].astype(str).str.startswith("dtype('bool')") & cases["index"].isna()
    if not whole.any():
        return cases
    rows = [cases[~whole]]
    for case in cases[whole].itertuples(index=False):
        values = frame[case.column]
        bad = values[values.notna() & ~values.map(pd.api.types.is_bool)]
        rows.append(
            pd.DataFrame(
                {"column": case.column, "check": case.check, "failure_case": bad.array}
            ).assign(index=list(bad.index))
        )
    return pd.concat(rows, ignore_index=True)


def _violations_from(
    errors: SchemaErrors, frame: pd.DataFrame, raw: pd.DataFrame | None, schema: Schema
) -> list[Violation]:
    cases = errors.failure_cases[["column", "check", "failure_case", "index"]]
    typing = cases["check"].astype(str).str.startswith(("coerce_dtype", "dtype"))
    # A missing value that cannot become an int is reported once, as a missing value.
    cases = cases[~(typing & cases["failure_case"].isna())]
    check = cases["check"].astype(str)
    # Where a column could not be converted to its type, its other checks only add noise.
    uncoercible = set(cases.loc[check.str.startswith("coerce_dtype"), "column"])
    keep = ~cases["column"].isin(uncoercible) | check.str.startswith(
        ("coerce_dtype", "not_nullable")
    )
    cases = _not_boolean(frame, cases[keep])
    found: list[Violation] = []
    for (column, check_name), group in cases.groupby(["column", "check"], sort=False, dropna=False):
        column_name = column if isinstance(column, str) else ""
        name = str(check_name)
        rule = _plain_rule(name, column_name, schema)
        if name in ("column_in_schema", "column_in_dataframe"):
            found += [Violation(str(v), rule, 0, [], name) for v in group["failure_case"]]
            continue
        rows = int(group["index"].notna().sum())
        examples = [
            _describe(frame, raw, column_name, idx, val, schema.id_column)
            for idx, val in group[["index", "failure_case"]]
            .head(MAX_EXAMPLES)
            .itertuples(index=False)
        ]
        found.append(Violation(column_name, rule, rows, examples, _short(name)))
    order = {name: i for i, name in enumerate(schema.columns)}
    return sorted(found, key=lambda v: order.get(v.column, len(order)))


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
                    f"label leakage: alone predicts '{schema.target}' with ROC-AUC "
                    f"{strength:.4f} > schema.max_feature_auc {schema.max_feature_auc}",
                    len(frame),
                    [],
                )
            )
    return found


def validate(
    frame: pd.DataFrame,
    schema: Schema,
    *,
    source: str = "data",
    now: dt.datetime | None = None,
    raw: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Return the data coerced to the schema's types and column order, or raise
    DataValidationError listing every broken rule. ``raw``, the data before
    preparation, lets examples of missing values show what was written."""
    now = now or dt.datetime.now()
    if frame.empty:
        raise DataValidationError(source, 0, [Violation("", "no rows (needs at least one)", 0, [])])
    try:
        valid = pandera_schema(schema, now).validate(frame, lazy=True)
    except SchemaErrors as errors:
        raise DataValidationError(
            source, len(frame), _violations_from(errors, frame, raw, schema)
        ) from None
    target = valid[schema.target].astype(int)
    classes = {int(c) for c in np.unique(target)}
    if classes != {0, 1}:
        rule = f"the target does not have both classes 0 and 1 (found only {sorted(classes)})"
        raise DataValidationError(source, len(frame), [Violation(schema.target, rule, 0, [])])
    leaks = _leakage(valid, schema)
    if leaks:
        raise DataValidationError(source, len(frame), leaks)
    result = valid[list(schema.columns)].reset_index(drop=True)
    result.attrs.pop(ORIGIN, None)  # the validated data is one new file
    # A nullable int column is checked as pandas' Int64; the model reads it as float with
    # NaN (scikit-learn refuses pd.NA), as serving does.
    nullable_ints = [c for c in result.columns if isinstance(result[c].dtype, pd.Int64Dtype)]
    return result.astype(dict.fromkeys(nullable_ints, "float64"))


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
