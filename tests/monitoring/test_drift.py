"""Drift per feature: detects shifts of known size, stays quiet without them, controls
false discoveries across features and ignores negligible shifts on huge windows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from modelops.config import DriftSettings, load_settings
from modelops.monitoring.counts import PredictionCounts, WindowCounts, frame_counts
from modelops.monitoring.drift import compare, prediction_drift
from modelops.monitoring.profile import (
    Binned,
    Decisions,
    Distribution,
    Profile,
    categorical_distribution,
    numeric_distribution,
)
from modelops.schema import ColumnType, Schema
from tests.conftest import REPO
from tests.monitoring.conftest import profile_of, rows_of

FDR = 0.05  # for the tests that set their own DriftSettings


def numeric_features(schema: Schema, types=(ColumnType.FLOAT, ColumnType.INT)) -> list[str]:
    return [f for f in schema.features if schema.columns[f].type in types]


def mean_shift(frame: pd.DataFrame, name: str, sd_units: float, seed: int = 0) -> pd.DataFrame:
    """``frame`` with ``name`` moved by ``sd_units`` of its SD (integers stochastically
    rounded, so the mean moves by exactly that)."""
    shifted = frame.copy()
    values = shifted[name].astype(float)
    moved = values + sd_units * values.std()
    if frame[name].dtype.kind == "i":
        noise = np.random.default_rng(seed).random(len(values))
        moved = np.floor(moved + noise)
    shifted[name] = moved
    return shifted


def profile_from(distributions: list[Distribution]) -> Profile:
    """A profile of these distributions (the score's is a placeholder)."""
    return Profile(
        features={d.name: d for d in distributions},
        score=distributions[0],
        decisions=Decisions(0.5, 0.9, {"approve": 1.0}, 1),
        bins=20,
        train_rows=distributions[0].rows,
    )


def test_no_shift_no_alarm(profile, window, drift_settings, alpha):
    result = compare(profile, frame_counts(window, profile), drift_settings, alpha)
    assert result.judged
    assert result.drifted == []
    assert all(f.q_value is not None and f.q_value > alpha for f in result.features)


def test_mean_shift_of_each_numeric_feature_is_detected_alone(
    profile, window, schema, drift_settings, alpha
):
    for name in numeric_features(schema):
        result = compare(
            profile, frame_counts(mean_shift(window, name, 0.3), profile), drift_settings, alpha
        )
        assert result.drifted == [name]
        (found,) = [f for f in result.features if f.feature == name]
        assert found.effect is not None
        assert found.effect.low <= 0.3 * 1.05, "the effect is in reference SDs"
        assert found.effect.high >= 0.3 * 0.6
        assert found.moved, "the explanation names the bins that moved"


def test_new_category_at_one_percent_is_detected(profile, window, schema, drift_settings, alpha):
    categories = [f for f in schema.features if schema.columns[f].type == ColumnType.CATEGORY]
    if not categories:
        pytest.skip("the schema has no category feature")
    name = categories[0]
    changed = window.copy()
    changed.loc[changed.sample(frac=0.01, random_state=0).index, name] = "brand-new"
    result = compare(profile, frame_counts(changed, profile), drift_settings, alpha)
    assert result.drifted == [name]
    (found,) = [f for f in result.features if f.feature == name]
    assert found.effect is not None
    assert found.effect.measure == "total_variation"
    assert found.effect.low <= 0.01 <= found.effect.high
    assert found.moved[0].label == "unseen"
    assert found.moved[0].current_share == pytest.approx(0.01, abs=0.001)


def test_unit_change_is_drift(profile, window, schema, drift_settings, alpha):
    name = numeric_features(schema, (ColumnType.FLOAT,))[0]
    changed = window.assign(**{name: window[name] * 100})
    result = compare(profile, frame_counts(changed, profile), drift_settings, alpha)
    assert name in result.drifted


def test_benjamini_hochberg_controls_alarms_over_many_null_features():
    rng = np.random.default_rng(5)
    features = 100
    reference = [
        numeric_distribution(f"x{i}", pd.Series(rng.normal(size=5000)), 10) for i in range(features)
    ]
    profile = profile_from(reference)
    settings = DriftSettings(min_effect=0, min_effect_category=0, n_resamples=100)  # BH decides
    windows, raw_alarms, alarms = 20, 0, 0
    for _ in range(windows):
        window = pd.DataFrame({f"x{i}": rng.normal(size=2000) for i in range(features)})
        result = compare(profile, frame_counts(window, profile), settings, FDR)
        raw_alarms += sum(f.p_value <= FDR for f in result.features)
        alarms += len(result.drifted)
    assert raw_alarms > 0.03 * features * windows, "unadjusted, about 5 % of features alarm"
    assert alarms <= 2, "adjusted, a window alarms at most at the FDR when nothing changed"


def test_min_effect_suppresses_a_negligible_shift_on_a_huge_window():
    rng = np.random.default_rng(6)
    n = 1_000_000
    profile = profile_from([numeric_distribution("x", pd.Series(rng.normal(size=n)), 20)])
    settings = DriftSettings()  # min_effect 0.05 SD
    tiny = frame_counts(pd.DataFrame({"x": rng.normal(0.02, 1, n)}), profile)
    real = frame_counts(pd.DataFrame({"x": rng.normal(0.1, 1, n)}), profile)
    (negligible,) = compare(profile, tiny, settings, FDR).features
    (large,) = compare(profile, real, settings, FDR).features
    assert negligible.q_value is not None
    assert negligible.q_value < 1e-6, "significant..."
    assert negligible.effect is not None
    assert negligible.effect.high < settings.min_effect
    assert not negligible.drifted, "...but negligible"
    assert large.drifted


def test_null_share_change_is_an_effect_of_a_numeric_feature():
    rng = np.random.default_rng(7)
    reference = pd.Series(np.where(rng.random(50_000) < 0.1, np.nan, rng.normal(size=50_000)))
    profile = profile_from([numeric_distribution("x", reference, 20)])
    window = pd.Series(np.where(rng.random(20_000) < 0.2, np.nan, rng.normal(size=20_000)))
    (found,) = compare(
        profile, frame_counts(window.to_frame("x"), profile), DriftSettings(), FDR
    ).features
    assert found.drifted
    assert found.null_effect is not None
    assert found.null_effect.large
    assert found.effect is not None
    assert not found.effect.large


def test_small_window_is_reported_not_judged(profile, window, schema, drift_settings, alpha):
    name = numeric_features(schema)[0]
    small = mean_shift(window.head(drift_settings.min_rows - 1), name, 2.0)
    result = compare(profile, frame_counts(small, profile), drift_settings, alpha)
    assert not result.judged
    assert result.drifted == []
    (found,) = [f for f in result.features if f.feature == name]
    assert found.q_value is None
    assert not found.judged
    assert found.p_value < 1e-6, "the statistics are still there to read"


def test_counts_must_match_the_profile_bins(profile, drift_settings, alpha):
    name = next(iter(profile.features))
    broken = WindowCounts(
        600, {**{n: d.binned for n, d in profile.features.items()}, name: Binned((600,))}
    )
    with pytest.raises(ValueError, match=name):
        compare(profile, broken, drift_settings, alpha)


def test_score_drift_and_decision_rates(drift_settings, alpha):
    rng = np.random.default_rng(8)
    holdout = pd.Series(rng.beta(1, 20, 50_000))
    score = numeric_distribution("score", holdout, 20)
    profile = Profile(
        features={"c": categorical_distribution("c", pd.Series(["a"] * 10), ("a",))},
        score=score,
        decisions=Decisions(0.1, 0.5, {"approve": 0.9, "review": 0.1, "decline": 0.0}, 50_000),
        bins=20,
        train_rows=10,
    )

    def counts(scores: np.ndarray) -> PredictionCounts:
        binned = frame_counts(pd.DataFrame({"score": scores}), profile_from([score]))
        return PredictionCounts(
            "m:1",
            "champion",
            len(scores),
            binned.features["score"],
            {"approve": 9000, "review": 1000},
        )

    same = prediction_drift(profile, counts(rng.beta(1, 20, 10_000)), drift_settings, alpha)
    moved = prediction_drift(profile, counts(rng.beta(1.3, 20, 10_000)), drift_settings, alpha)
    assert not same.score.drifted
    assert moved.score.drifted
    assert same.decision_rates["review"] == (0.1, 0.1)
    assert same.decision_rates["decline"] == (0.0, 0.0)


def test_a_neutral_schema_works_end_to_end():
    """Another adoption's schema (tests/params/churn.yaml): nothing names the example."""
    settings = load_settings(REPO / "tests/params/churn.yaml")
    schema = settings.data_schema
    profile = profile_of(rows_of(schema, 20_000, seed=11), schema)
    window = rows_of(schema, 10_000, seed=12)
    drift, fdr = settings.monitoring.drift, settings.monitoring.test_alpha
    assert compare(profile, frame_counts(window, profile), drift, fdr).drifted == []
    name = numeric_features(schema, (ColumnType.FLOAT,))[0]
    shifted = compare(profile, frame_counts(mean_shift(window, name, 0.3), profile), drift, fdr)
    assert shifted.drifted == [name]
    kinds = {profile.features[f].kind for f in schema.features}
    assert kinds == {"numeric", "categorical"}
