"""A window's binned counts: from a DataFrame and from the prediction log, identical."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from modelops.monitoring.counts import (
    Window,
    frame_counts,
    log_counts,
    log_prediction_counts,
)
from modelops.monitoring.profile import Profile
from modelops.schema import ColumnType, Schema
from tests.monitoring.conftest import T0, write_log

DAY = dt.timedelta(days=1)


def odd_values(frame: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """``frame`` with values of the wrong type, unseen levels and nulls mixed in."""
    odd = frame.astype(object).copy()
    for i, name in enumerate(schema.features):
        spec = schema.columns[name]
        rows = odd.index[i::7][:40]
        if spec.type in (ColumnType.INT, ColumnType.FLOAT):
            odd.loc[rows[:10], name] = "12.5"  # text in a number field
            odd.loc[rows[10:20], name] = None
            odd.loc[rows[20:30], name] = True  # a bool is no number
            odd.loc[rows[30:], name] = 1e12  # beyond every bin
        elif spec.type == ColumnType.BOOL:
            odd.loc[rows[:10], name] = 1  # a number is no bool
            odd.loc[rows[10:20], name] = None
            odd.loc[rows[20:30], name] = "true"
        else:
            odd.loc[rows[:10], name] = "never-seen"
            odd.loc[rows[10:20], name] = None
            odd.loc[rows[20:30], name] = 3  # a number is no level
    return odd


def test_log_counts_equal_frame_counts(log_url, window, profile: Profile, schema: Schema):
    frame = odd_values(window.head(3000), schema)
    write_log(log_url, frame[schema.features])
    write_log(log_url, frame.head(100)[schema.features], route="shadow")  # not counted
    write_log(log_url, frame.head(50)[schema.features], start=T0 - DAY)  # before the window
    engine = sa.create_engine(log_url)
    try:
        logged = log_counts(engine, profile, Window(T0, T0 + DAY))
    finally:
        engine.dispose()
    expected = frame_counts(frame, profile)
    assert logged.rows == expected.rows == 3000
    assert set(logged.features) == set(expected.features)
    for name, binned in expected.features.items():
        assert logged.features[name].counts == binned.counts, name
        assert logged.features[name].sums == pytest.approx(binned.sums, rel=1e-12), name
        assert binned.rows == 3000
        assert binned.counts[-1] >= 10, f"{name}: nulls counted in the null bin"


def test_frame_counts_bin_like_the_profile(reference: pd.DataFrame, profile: Profile):
    assert frame_counts(reference, profile).features == {
        name: d.binned for name, d in profile.features.items()
    }


def test_log_counts_filter_by_version_and_route(tmp_path, window, profile, schema):
    url = f"sqlite:///{tmp_path / 'log.db'}"
    features = window[schema.features]
    write_log(url, features.head(300), version="m:1")
    write_log(url, features.iloc[300:500], version="m:2", route="challenger")
    engine = sa.create_engine(url)
    try:
        both = log_counts(engine, profile, Window(T0, T0 + DAY))
        second = log_counts(engine, profile, Window(T0, T0 + DAY, model_version="m:2"))
        challenger = log_counts(engine, profile, Window(T0, T0 + DAY, route="challenger"))
    finally:
        engine.dispose()
    assert (both.rows, second.rows, challenger.rows) == (500, 200, 200)
    expected = frame_counts(features.iloc[300:500], profile).features
    assert {n: b.counts for n, b in second.features.items()} == {
        n: b.counts for n, b in expected.items()
    }


def test_prediction_counts_per_version_and_route(tmp_path, window, profile, schema):
    url = f"sqlite:///{tmp_path / 'log.db'}"
    features = window[schema.features].head(400)
    scores = np.random.default_rng(3).beta(1, 20, 400)
    decisions = ["approve"] * 390 + ["review"] * 10
    write_log(url, features, scores=scores, decisions=decisions)
    write_log(url, features.head(100), version="m:2", route="shadow", scores=scores[:100])
    engine = sa.create_engine(url)
    try:
        found = log_prediction_counts(engine, profile, T0, T0 + DAY)
    finally:
        engine.dispose()
    champion, shadow = found
    assert (champion.model_version, champion.route, champion.rows) == ("m:1", "champion", 400)
    assert champion.decisions == {"approve": 390, "review": 10}
    cuts = np.asarray(profile.score.cuts)
    expected = np.bincount(np.searchsorted(cuts, scores, side="right"), minlength=len(cuts) + 2)
    assert champion.score.counts == tuple(expected)
    assert sum(champion.score.sums) == pytest.approx(scores.sum())
    assert (shadow.route, shadow.rows) == ("shadow", 100)
