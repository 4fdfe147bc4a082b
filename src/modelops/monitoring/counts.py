"""A window's binned counts, in the bins of the reference profile.

Two sources give identical counts: a DataFrame of records (``frame_counts``; numpy
``searchsorted``) and the prediction log itself (``log_counts``), where the database
bins the logged JSON inputs with one GROUP BY per feature, so raw rows never leave it.

A value that is not of its column's type (text in a number column, a number in a
category column) counts as null for a number and as unseen for a category: drift sees
the lost values, and upstream.py names the type change.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from modelops.monitoring.profile import BOOL_LEVELS, Distribution, Profile
from modelops.serving.predlog import PREDICTIONS

SHADOW = "shadow"  # the route of shadow predictions: inputs their request already logged


@dataclass(frozen=True)
class Window:
    """The part of the prediction log a check reads: ``start <= created_at < end``, of
    one model version and route if given. Without a route, every answered route: shadow
    rows repeat the inputs of a request that is already counted."""

    start: dt.datetime
    end: dt.datetime
    model_version: str | None = None
    route: str | None = None

    def where(self) -> sa.ColumnElement[bool]:
        """The window as a condition on the predictions table."""
        table = PREDICTIONS.c
        conditions = [
            table.created_at >= self.start.astimezone(dt.UTC),
            table.created_at < self.end.astimezone(dt.UTC),
            table.route == self.route if self.route else table.route != SHADOW,
        ]
        if self.model_version:
            conditions.append(table.model_version == self.model_version)
        return sa.and_(*conditions)


@dataclass(frozen=True)
class WindowCounts:
    """A window's rows and, per feature, counts aligned with the profile's bins."""

    rows: int
    features: dict[str, tuple[int, ...]]


@dataclass(frozen=True)
class PredictionCounts:
    """One model version's and route's scores (the profile's score bins) and decisions."""

    model_version: str
    route: str
    rows: int
    score: tuple[int, ...]
    decisions: dict[str, int]


# ---- from a DataFrame ----------------------------------------------------------------


def frame_counts(frame: pd.DataFrame, profile: Profile) -> WindowCounts:
    """Counts of the features of ``frame`` (a missing column counts as all null)."""
    counts = {}
    for name, reference in profile.features.items():
        column = frame[name] if name in frame else pd.Series([None] * len(frame), dtype=object)
        counts[name] = reference.count(column)
    return WindowCounts(len(frame), counts)


# ---- from the prediction log -----------------------------------------------------------


def json_kind(field: str, dialect: str) -> sa.ColumnElement[Any]:
    """The JSON type of ``inputs[field]``: number, string, boolean, null, object or
    array, and SQL NULL when the field is missing."""
    inputs = PREDICTIONS.c.inputs
    if dialect == "postgresql":
        return sa.func.json_typeof(inputs[field])  # already these names
    raw = sa.func.json_type(inputs, f'$."{field}"')  # SQLite's names
    return sa.case(
        (raw.in_(["integer", "real"]), "number"),
        (raw == "text", "string"),
        (raw.in_(["true", "false"]), "boolean"),
        else_=raw,
    )


def _numeric_bin(kind: Any, value: Any, reference: Distribution) -> sa.ColumnElement[Any]:
    """A CASE that bins ``value`` as ``numeric_bins`` does."""
    steps = [(value < cut, i) for i, cut in enumerate(reference.cuts)]
    inner = sa.case(*steps, else_=len(reference.cuts)) if steps else sa.literal(0)
    return sa.case((kind == "number", inner), else_=len(reference.counts) - 1)


def _categorical_bin(kind: Any, value: Any, reference: Distribution) -> sa.ColumnElement[Any]:
    """A CASE that bins ``value`` as ``categorical_bins`` does."""
    unseen, null_bin = len(reference.levels), len(reference.levels) + 1
    if reference.levels == BOOL_LEVELS:
        expected, level = "boolean", sa.case((value, 1), else_=0)
    else:
        steps = [(value == level, i) for i, level in enumerate(reference.levels)]
        expected, level = "string", sa.case(*steps, else_=unseen)
    return sa.case(
        (sa.or_(kind.is_(None), kind == "null"), null_bin),
        (kind == expected, level),
        else_=unseen,
    )


def log_counts(engine: sa.Engine, profile: Profile, window: Window) -> WindowCounts:
    """Counts of the features logged in ``window``: one GROUP BY query per feature."""
    dialect = engine.dialect.name
    counts = {}
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(sa.func.count()).select_from(PREDICTIONS).where(window.where())
        ).scalar_one()
        for name, reference in profile.features.items():
            values = _window_values(name, reference, dialect, window)
            binned = _numeric_bin if reference.kind == "numeric" else _categorical_bin
            bin_ = binned(values.c.kind, values.c.value, reference).label("bin")
            found = np.zeros(len(reference.counts), dtype=np.int64)
            for index, n in connection.execute(sa.select(bin_, sa.func.count()).group_by(bin_)):
                found[index] = n
            counts[name] = tuple(int(c) for c in found)
    return WindowCounts(int(rows), counts)


def _window_values(name: str, reference: Distribution, dialect: str, window: Window) -> sa.Subquery:
    """The window's (kind, value) of one feature, the value cast only where its kind
    fits. ``OFFSET 0`` keeps the database from inlining this into the bin's CASE, which
    would extract the JSON value once per bin."""
    kind = json_kind(name, dialect)
    field = PREDICTIONS.c.inputs[name]
    value: Any
    if reference.kind == "numeric":
        value = sa.case((kind == "number", field.as_float()))
    elif reference.levels == BOOL_LEVELS:
        value = sa.case((kind == "boolean", field.as_boolean()))
    else:
        value = field.as_string()
    query = sa.select(kind.label("kind"), value.label("value"))
    return query.where(window.where()).offset(0).subquery()


def log_prediction_counts(
    engine: sa.Engine, profile: Profile, start: dt.datetime, end: dt.datetime
) -> list[PredictionCounts]:
    """Score bins and decision counts per model version and route (shadow included)
    of the predictions logged in ``start <= created_at < end``."""
    table = PREDICTIONS.c
    when = sa.and_(
        table.created_at >= start.astimezone(dt.UTC), table.created_at < end.astimezone(dt.UTC)
    )
    steps = [(table.score < cut, i) for i, cut in enumerate(profile.score.cuts)]
    bin_ = sa.case(*steps, else_=len(profile.score.cuts)).label("bin")
    keys = (table.model_version, table.route)
    scores: dict[tuple[str, str], np.ndarray] = defaultdict(
        lambda: np.zeros(len(profile.score.counts), dtype=np.int64)
    )
    decisions: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
    with engine.connect() as connection:
        for version, route, index, n in connection.execute(
            sa.select(*keys, bin_, sa.func.count()).where(when).group_by(*keys, bin_)
        ):
            scores[version, route][index] = n
        for version, route, decision, n in connection.execute(
            sa.select(*keys, table.decision, sa.func.count())
            .where(when)
            .group_by(*keys, table.decision)
        ):
            decisions[version, route][decision] = int(n)
    return [
        PredictionCounts(
            version,
            route,
            int(found.sum()),
            tuple(int(c) for c in found),
            decisions[version, route],
        )
        for (version, route), found in sorted(scores.items())
    ]
