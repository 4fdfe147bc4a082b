"""A window's binned counts (and, for numbers, sums), in the bins of the reference profile.

Two sources give identical counts: a DataFrame of records (``frame_counts``; numpy
``searchsorted``) and the prediction log itself (``log_counts``), where the database
bins the logged JSON inputs with one GROUP BY per feature, so raw rows never leave it.
Also from the log: the scores and decisions per model version and route
(``log_prediction_counts``), for prediction drift.

A value that is not of its column's type (text in a number column, a number in a
category column) counts as null for a number and as unseen for a category: drift sees
the lost values, and upstream.py names the type change. Booleans are the numbers 1 and
0, as SQLite's JSON functions read them, in both sources.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from modelops.monitoring.profile import BOOL_LEVELS, Binned, Distribution, Profile
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
    """A window's rows and, per feature, counts (and sums) in the profile's bins."""

    rows: int
    features: dict[str, Binned]


@dataclass(frozen=True)
class PredictionCounts:
    """One model version's and route's scores (the profile's score bins) and decisions."""

    model_version: str
    route: str
    rows: int
    score: Binned
    decisions: dict[str, int]


# ---- from a DataFrame ----------------------------------------------------------------


def frame_counts(frame: pd.DataFrame, profile: Profile) -> WindowCounts:
    """Counts of the features of ``frame`` (a missing column counts as all null)."""
    counts = {}
    for name, reference in profile.features.items():
        column = frame[name] if name in frame else pd.Series([None] * len(frame), dtype=object)
        counts[name] = reference.tally(column)
    return WindowCounts(len(frame), counts)


# ---- from the prediction log -----------------------------------------------------------


def json_value(field: str, dialect: str) -> sa.ColumnElement[Any]:
    """``inputs[field]``, extracted once per row: the JSON value as SQL (SQLite: a
    number, text, 1/0 for booleans, NULL for null or missing) or as a JSON fragment
    (PostgreSQL). Read it with ``json_number``, ``json_text`` and ``json_is_null``."""
    if dialect == "postgresql":
        return PREDICTIONS.c.inputs[field]  # inputs -> 'field'
    return sa.func.json_extract(PREDICTIONS.c.inputs, f'$."{field}"')


def json_is_number(value: sa.ColumnElement[Any], dialect: str) -> sa.ColumnElement[bool]:
    """The value is a number (or a boolean: 1 or 0, as SQLite reads JSON)."""
    if dialect == "postgresql":
        return sa.func.json_typeof(value).in_(["number", "boolean"])
    return sa.func.typeof(value).in_(["integer", "real"])


def json_is_text(value: sa.ColumnElement[Any], dialect: str) -> sa.ColumnElement[bool]:
    """The value is a string."""
    if dialect == "postgresql":
        return sa.func.json_typeof(value) == "string"
    return sa.func.typeof(value) == "text"


def json_is_null(value: sa.ColumnElement[Any], dialect: str) -> sa.ColumnElement[bool]:
    """The field is missing or null."""
    if dialect == "postgresql":
        return sa.or_(value.is_(None), sa.func.json_typeof(value) == "null")
    return value.is_(None)


def json_number(value: sa.ColumnElement[Any], dialect: str) -> sa.ColumnElement[Any]:
    """The value as a number, where ``json_is_number`` holds."""
    if dialect == "postgresql":
        text = value.op("#>>")(sa.literal_column("'{}'"))
        return sa.case(
            (sa.func.json_typeof(value) == "boolean", sa.case((text == "true", 1.0), else_=0.0)),
            else_=sa.cast(text, sa.Float),
        )
    return value


def json_text(value: sa.ColumnElement[Any], dialect: str) -> sa.ColumnElement[Any]:
    """The value as text, where ``json_is_text`` holds."""
    if dialect == "postgresql":
        return value.op("#>>")(sa.literal_column("'{}'"))
    return value


def _bin(
    value: sa.ColumnElement[Any], reference: Distribution, dialect: str
) -> sa.ColumnElement[Any]:
    """A CASE that bins the extracted ``value`` as ``Distribution.tally`` does; the type
    is tested once, then only the value is compared."""
    null_bin = len(reference.counts) - 1
    if reference.kind == "numeric":
        number = json_number(value, dialect)
        steps = [(number < cut, i) for i, cut in enumerate(reference.cuts)]
        is_number = json_is_number(value, dialect)
        return sa.case((~is_number, null_bin), *steps, else_=len(reference.cuts))
    unseen = len(reference.levels)
    if reference.levels == BOOL_LEVELS:
        known = json_is_number(value, dialect)
        levels = sa.case({0: 0, 1: 1}, value=json_number(value, dialect), else_=unseen)
    else:
        known = json_is_text(value, dialect)
        lookup = {level: i for i, level in enumerate(reference.levels)}
        levels = sa.case(lookup, value=json_text(value, dialect), else_=unseen)
    return sa.case((json_is_null(value, dialect), null_bin), (known, levels), else_=unseen)


def log_counts(engine: sa.Engine, profile: Profile, window: Window) -> WindowCounts:
    """Counts (and sums) of the features logged in ``window``: one GROUP BY query per
    feature, over a subquery that extracts the feature's JSON value once per row
    (``OFFSET 0`` keeps the database from inlining it into the CASE, which would
    extract it again for every bin)."""
    dialect = engine.dialect.name
    counts = {}
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(sa.func.count()).select_from(PREDICTIONS).where(window.where())
        ).scalar_one()
        for name, reference in profile.features.items():
            extracted = (
                sa.select(json_value(name, dialect).label("value"))
                .where(window.where())
                .offset(0)
                .subquery()
            )
            value = extracted.c.value
            bin_ = _bin(value, reference, dialect).label("bin")
            total: sa.ColumnElement[Any] = sa.literal(0.0)
            if reference.kind == "numeric":
                number = json_number(value, dialect)
                total = sa.func.sum(sa.case((json_is_number(value, dialect), number)))
            query = sa.select(bin_, sa.func.count(), total).group_by(sa.literal_column("bin"))
            counts[name] = _binned(connection.execute(query), reference)
    return WindowCounts(int(rows), counts)


def _binned(found: Iterable[Any], reference: Distribution) -> Binned:
    """(bin, count, sum) rows as a Binned of the reference's bins."""
    counts = np.zeros(len(reference.counts), dtype=np.int64)
    sums = np.zeros(len(reference.counts))
    for index, n, total in found:
        counts[index], sums[index] = n, total or 0.0
    kept = tuple(float(x) for x in sums[:-1]) if reference.kind == "numeric" else ()
    return Binned(tuple(int(c) for c in counts), kept)


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
    scores: dict[tuple[str, str], list[tuple[int, int, float]]] = defaultdict(list)
    decisions: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
    with engine.connect() as connection:
        for version, route, index, n, total in connection.execute(
            sa.select(*keys, bin_, sa.func.count(), sa.func.sum(table.score))
            .where(when)
            .group_by(*keys, sa.literal_column("bin"))
        ):
            scores[version, route].append((index, n, total))
        for version, route, decision, n in connection.execute(
            sa.select(*keys, table.decision, sa.func.count())
            .where(when)
            .group_by(*keys, table.decision)
        ):
            decisions[version, route][decision] = int(n)
    binned = {key: _binned(found, profile.score) for key, found in scores.items()}
    return [
        PredictionCounts(version, route, found.rows, found, decisions[version, route])
        for (version, route), found in sorted(binned.items())
    ]
