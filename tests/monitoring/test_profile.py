"""The reference profile: quantile bins, level counts, scores and decisions, saved and read."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from modelops.monitoring.profile import (
    BOOL_LEVELS,
    Profile,
    build_profile,
    categorical_distribution,
    numeric_distribution,
    quantile_cuts,
)
from modelops.schema import ColumnType, Schema


def test_numeric_bins_hold_equal_shares_and_nulls_apart():
    rng = np.random.default_rng(0)
    values = pd.Series(np.where(rng.random(10_000) < 0.1, np.nan, rng.normal(size=10_000)))
    found = numeric_distribution("x", values, 20)
    assert len(found.cuts) == 19
    assert len(found.counts) == 21
    assert len(found.sums) == 20
    assert found.nulls == values.isna().sum()
    shares = np.asarray(found.counts[:-1]) / values.notna().sum()
    assert shares == pytest.approx(np.full(20, 0.05), abs=0.002)
    assert sum(found.sums) == pytest.approx(values.sum())
    assert found.min == values.min()
    assert found.max == values.max()
    assert found.sd == pytest.approx(values.std())


def test_discrete_columns_get_one_cut_per_value():
    values = np.repeat([0.0, 1.0, 2.0, 5.0], [700, 200, 90, 10])
    assert quantile_cuts(values, 20) == (0.0, 1.0, 2.0)
    assert quantile_cuts(np.array([]), 20) == ()


def test_levels_count_unseen_values_and_nulls():
    column = pd.Series(["a", "b", "a", "zzz", None, 3])
    found = categorical_distribution("c", column, ("a", "b", "c"))
    assert found.counts == (2, 1, 0, 2, 1), "a, b, c, unseen (zzz and a number), null"
    flags = categorical_distribution("f", pd.Series([True, False, True, None]), BOOL_LEVELS)
    assert flags.counts == (1, 2, 0, 1)
    assert found.labels == ["a", "b", "c", "unseen", "null"]


def test_profile_of_any_schema_round_trips_through_json(schema: Schema, reference, tmp_path):
    scores = pd.Series(np.linspace(0, 1, 1001))
    profile = build_profile(reference, scores, schema, 10, (0.9, 0.99))
    assert set(profile.features) == set(schema.features)
    for name, found in profile.features.items():
        numeric = schema.columns[name].type in (ColumnType.INT, ColumnType.FLOAT)
        assert found.kind == ("numeric" if numeric else "categorical")
        assert found.rows == len(reference)
    assert profile.decisions.rates == pytest.approx(
        {"approve": 0.9, "review": 0.09, "decline": 0.01}, abs=0.002
    )
    assert Profile.load(profile.save(tmp_path / "profile.json")) == profile
