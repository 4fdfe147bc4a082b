"""Seeded synthetic data for any schema: the template's tests run on it, whatever the domain.

``valid`` draws rows that pass validation (declared types, ranges, categories and
nullability, unique ids, whole weeks of event time, both classes) with a learnable
signal: the positive rate depends on every feature (steps and humps of numbers, levels
of categories and bools) and on one interaction, so a gradient-boosting model beats a
logistic and a prior-only baseline (given a number without an expected direction, or
two such features), while no feature alone comes near ``schema.max_feature_auc``.
``invalid`` breaks such a frame for one validation rule at a time.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np
import pandas as pd

from modelops.schema import ColumnSpec, ColumnType, Role, Schema

START = dt.date(2025, 1, 6)  # a Monday: the time column spans whole weeks from here
SIGNAL = 2.0  # standard deviation of the log-odds that the features explain
INTERACTION = 0.8  # weight of the interaction next to the sum of the main effects
NULL_SHARE = 0.1  # share of missing values in nullable columns

Rule = Literal[
    "wrong_type",
    "out_of_range",
    "unknown_category",
    "null",
    "duplicate_id",
    "missing_column",
    "extra_column",
]
RULES: tuple[Rule, ...] = get_args(Rule)
NUMBERS = (ColumnType.INT, ColumnType.FLOAT)


@dataclass(frozen=True)
class Broken:
    """A frame that breaks one rule at ``column`` (and, for row rules, at index ``row``)."""

    rule: Rule
    column: str
    frame: pd.DataFrame
    row: Any = None


def target_labels(schema: Schema) -> tuple[Any, Any]:
    """The target's positive label and the negative label ``valid`` writes."""
    spec = schema.columns[schema.target]
    positive = spec.positive_label
    if spec.type == ColumnType.BOOL:
        return positive, not positive
    others = [v for v in (spec.categories or spec.allowed or ()) if v != positive]
    if others:
        return positive, others[0]
    if spec.type == ColumnType.INT:
        return positive, 0 if positive != 0 else 1
    return positive, "No" if positive != "No" else "Yes"


def valid(
    schema: Schema,
    rows: int,
    seed: int = 0,
    *,
    prepared: bool = False,
    expect: Mapping[str, str] | None = None,
    weeks: int = 8,
    positive_rate: float = 0.2,
) -> pd.DataFrame:
    """``rows`` rows in the schema's column order (in time order when there is a time
    column). The target holds its declared labels, or 0/1 with ``prepared`` (as
    ``modelops.data.prepare`` leaves it; a bool target stays bool). ``expect`` maps
    features to "increases" or "decreases": raising them moves the positive rate that
    way (params.yaml ``behaviour.expect``). About ``positive_rate`` of the rows are
    positive. Missing values are NaN/None, not markers; bool columns have none."""
    if rows < 20:
        raise ValueError(f"rows must be at least 20, got {rows}")
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            name: _column(name, spec, rows, weeks, rng)
            for name, spec in schema.columns.items()
            if spec.role != Role.TARGET
        }
    )
    log_odds = _log_odds(frame, schema, dict(expect or {}), rng)
    chance = _sigmoid(log_odds + _intercept(log_odds, positive_rate))
    positive = rng.random(rows) < chance
    positive[np.argmax(log_odds)], positive[np.argmin(log_odds)] = True, False  # both classes
    frame[schema.target] = _target(schema, positive, prepared)
    return frame[list(schema.columns)]


def invalid(frame: pd.DataFrame, schema: Schema, rule: Rule) -> Broken | None:
    """A copy of ``frame`` (from ``valid``) that breaks ``rule`` once; None when the schema
    has no column the rule can apply to (no id column, no category, nothing bounded...)."""
    broken = frame.copy()
    row = broken.index[1]
    columns = schema.columns
    if rule == "missing_column":
        name = schema.features[0]
        return Broken(rule, name, broken.drop(columns=[name]))
    if rule == "extra_column":
        name = next(
            f"undeclared_{i}" for i in range(len(columns) + 1) if f"undeclared_{i}" not in columns
        )
        return Broken(rule, name, broken.assign(**{name: 1}))
    if rule == "duplicate_id":
        if schema.id_column is None:
            return None
        broken.loc[row, schema.id_column] = broken.loc[broken.index[0], schema.id_column]
        return Broken(rule, schema.id_column, broken, row)
    column, value = _breaking_value(schema, rule)
    if column is None:
        return None
    broken[column] = broken[column].astype(object)
    broken.loc[row, column] = value
    return Broken(rule, column, broken, row)


def invalid_cases(frame: pd.DataFrame, schema: Schema) -> list[Broken]:
    """One broken copy of ``frame`` per rule the schema lets break."""
    return [case for rule in RULES if (case := invalid(frame, schema, rule)) is not None]


def _breaking_value(schema: Schema, rule: Rule) -> tuple[str | None, Any]:
    """The column to break for a value rule, and the value that breaks it."""
    names = sorted(
        (n for n in schema.columns if n != schema.target), key=lambda n: n not in schema.features
    )  # features first
    specs = schema.columns
    if rule == "wrong_type":
        return _first(specs, names, (ColumnType.FLOAT, ColumnType.INT, ColumnType.DATETIME)), "x"
    if rule == "unknown_category" and schema.unknown_categories == "error":
        return _first(specs, names, (ColumnType.CATEGORY,)), "not-a-declared-category"
    if rule == "null":
        kinds = (ColumnType.FLOAT, ColumnType.STRING, ColumnType.CATEGORY, ColumnType.DATETIME)
        required = [n for n in names if not specs[n].nullable]
        return _first(specs, required, kinds), None
    if rule == "out_of_range":
        for name in names:
            spec = specs[name]
            if spec.type in NUMBERS and spec.min is not None:
                return name, _number(spec, spec.min - 1)
            if spec.type in NUMBERS and spec.max is not None:
                return name, _number(spec, spec.max + 1)
            if spec.allowed:
                return name, max(spec.allowed) + 1
    return None, None


def _first(
    specs: Mapping[str, ColumnSpec], names: list[str], kinds: tuple[ColumnType, ...]
) -> str | None:
    """The first of ``names`` of the first of ``kinds`` that has one."""
    return next((n for kind in kinds for n in names if specs[n].type == kind), None)


def _number(spec: ColumnSpec, value: float) -> float | int:
    return int(value) if spec.type == ColumnType.INT else value


def _column(name: str, spec: ColumnSpec, rows: int, weeks: int, rng: np.random.Generator) -> Any:
    """One column's values: unique ids, sorted event times, else values of its type."""
    if spec.role == Role.ID:
        return _ids(name, spec, rows)
    if spec.type == ColumnType.DATETIME:
        seconds = rng.uniform(0, weeks * 7 * 86_400, rows).round()
        if spec.role == Role.TIME:
            seconds.sort()
        values: Any = pd.Timestamp(START) + pd.to_timedelta(seconds, unit="s")
    elif spec.type == ColumnType.STRING:
        pool = max(rows // 4, 1) if spec.role == Role.ENTITY else 50
        values = np.array([f"{name[:1]}{k:06d}" for k in rng.integers(0, pool, rows)], object)
    elif spec.type == ColumnType.CATEGORY:
        values = rng.choice(np.array(spec.categories, dtype=object), rows)
    elif spec.type == ColumnType.BOOL:
        return rng.random(rows) < 0.3  # never null: a bool column with gaps is not bool
    elif spec.type == ColumnType.INT:
        values = _ints(spec, rows, rng)
    else:
        values = _floats(spec, rows, rng)
    if not spec.nullable or spec.role == Role.TIME:
        return values
    gaps = rng.random(rows) < NULL_SHARE
    return pd.Series(values, dtype="Int64" if spec.type == ColumnType.INT else None).mask(gaps)


def _ids(name: str, spec: ColumnSpec, rows: int) -> Any:
    if spec.type == ColumnType.STRING:
        return np.array([f"{name[:1]}{i:07d}" for i in range(1, rows + 1)], dtype=object)
    if spec.type in NUMBERS:
        return np.arange(1, rows + 1, dtype=np.int64 if spec.type == ColumnType.INT else float)
    raise ValueError(f"id column '{name}': cannot make unique {spec.type} values")


def _ints(spec: ColumnSpec, rows: int, rng: np.random.Generator) -> np.ndarray:
    if spec.allowed:
        return rng.choice(np.array(spec.allowed, dtype=np.int64), rows)
    spread = np.floor(rng.lognormal(2.0, 1.0, rows)).astype(np.int64)  # median 7, long tail
    low = math.ceil(spec.min) if spec.min is not None else None
    high = math.floor(spec.max) if spec.max is not None else None
    if low is not None and high is not None:
        return rng.integers(low, high + 1, rows)
    if low is not None:
        return low + spread
    if high is not None:
        return high - spread
    return rng.integers(0, 100, rows)


def _floats(spec: ColumnSpec, rows: int, rng: np.random.Generator) -> np.ndarray:
    spread = rng.lognormal(3.0, 1.0, rows)  # median 20, long tail
    if spec.min is not None and spec.max is not None:
        values = rng.uniform(spec.min, spec.max, rows)
    elif spec.min is not None:
        values = spec.min + spread
    elif spec.max is not None:
        values = spec.max - spread
    else:
        values = rng.normal(0.0, 10.0, rows)
    low = -np.inf if spec.min is None else spec.min
    high = np.inf if spec.max is None else spec.max
    return np.clip(values.round(2), low, high)


def _log_odds(
    frame: pd.DataFrame, schema: Schema, expect: dict[str, str], rng: np.random.Generator
) -> np.ndarray:
    """Weighted main effects of every feature plus one interaction, scaled to SIGNAL.

    Each feature gets a position in [0, 1], oriented so that higher means more positive
    (expected directions are honoured). Numbers with more than two values get a step
    (monotone) or, without an expected direction, a hump: shapes a logistic regression
    cannot draw; bools, two-valued numbers and categories add linearly."""
    positions: dict[str, np.ndarray] = {}
    total = np.zeros(len(frame))
    humps = 0
    for name in schema.features:
        spec = schema.columns[name]
        position = _position(frame[name], spec, rng)
        default = 1 if rng.random() < 0.5 else -1
        if {"increases": 1, "decreases": -1}.get(expect.get(name, ""), default) < 0:
            position = 1 - position
        positions[name] = position
        effect, weight = position, rng.uniform(0.5, 1.0)
        if _is_continuous(spec):
            hump = name not in expect and humps % 2 == 0
            humps += name not in expect
            effect = 1 - 2 * np.abs(position - 0.5) if hump else (position > 0.6).astype(float)
            weight = rng.uniform(1.5, 2.0) if hump else weight
        total += weight * _standard(np.where(np.isnan(position), np.nan, effect))
    free = [n for n in positions if n not in expect]
    pair = sorted(free or positions, key=lambda n: not _is_continuous(schema.columns[n]))[:2]
    if len(pair) == 2:
        high = [np.nan_to_num(positions[n]) > 0.5 for n in pair]
        # Both high; or, between features without an expected direction, either both
        # high or both low: an interaction no sum of per-feature effects can draw.
        both = high[0] & high[1] if len(free) < 2 else high[0] == high[1]
        total += INTERACTION * _standard(both.astype(float)) * np.sqrt(len(positions))
    return SIGNAL * _standard(total)


def _is_continuous(spec: ColumnSpec) -> bool:
    """A number with more than two possible values."""
    return spec.type in NUMBERS and not (spec.allowed and len(spec.allowed) <= 2)


def _position(values: pd.Series, spec: ColumnSpec, rng: np.random.Generator) -> np.ndarray:
    """Where each value sits in [0, 1]: its quantile, or a random order of categories."""
    if spec.type == ColumnType.CATEGORY:
        categories = list(spec.categories or ())
        order = rng.permutation(len(categories)) / max(len(categories) - 1, 1)
        return values.map(dict(zip(categories, order, strict=True))).to_numpy(dtype=float)
    if spec.type == ColumnType.BOOL:
        return values.to_numpy(dtype=float)
    return values.astype(float).rank(pct=True).to_numpy(dtype=float)


def _standard(values: np.ndarray) -> np.ndarray:
    """Zero mean and unit spread; missing values and constant columns contribute 0."""
    spread = np.nanstd(values)
    if not spread > 0:
        return np.zeros(len(values))
    return np.asarray(np.nan_to_num((values - np.nanmean(values)) / spread), dtype=float)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.asarray(1 / (1 + np.exp(-x)), dtype=float)


def _intercept(log_odds: np.ndarray, rate: float) -> float:
    """The shift of ``log_odds`` that makes the mean chance ``rate`` (bisection)."""
    low, high = -30.0, 30.0
    for _ in range(60):
        middle = (low + high) / 2
        low, high = (middle, high) if _sigmoid(log_odds + middle).mean() < rate else (low, middle)
    return (low + high) / 2


def _target(schema: Schema, positive: np.ndarray, prepared: bool) -> Any:
    kind = schema.columns[schema.target].type
    if prepared:  # 0/1; a bool target stays bool (True is 1), as validation expects
        return positive if kind == ColumnType.BOOL else positive.astype(np.int64)
    yes, no = target_labels(schema)
    values = np.where(positive, yes, no)
    if kind == ColumnType.BOOL:
        return values.astype(bool)
    return values.astype(np.int64) if kind == ColumnType.INT else values.astype(object)
