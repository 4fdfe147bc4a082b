import numpy as np
import pandas as pd
import pytest

from modelops.config import ControlSettings
from modelops.errors import InputError
from modelops.monitoring.spc import (
    FLAG_RATE,
    MEAN_SCORE,
    POSITIVE_RATE,
    InControl,
    alarming,
    charted_features,
    control_charts,
    cusum,
    decision_interval,
    k_of_n,
    log_statistics,
    siegmund_arl,
    window_means,
)
from modelops.schema import Schema

SETTINGS = ControlSettings()  # arl 365, shift 1 SD, 2 of the last 3
K = SETTINGS.shift_sd / 2
STREAMS, WINDOWS = 1000, 2000


def run_lengths(z: np.ndarray, h: float) -> tuple[np.ndarray, np.ndarray]:
    """Windows until the first alarm of each stream (rows of z), and whether it came."""
    upper, lower = cusum(z, K)
    alarms = (upper > h) | (lower > h)
    came = alarms.any(axis=1)
    return np.where(came, alarms.argmax(axis=1) + 1, z.shape[1]), came


def empirical_arl(z: np.ndarray, h: float) -> float:
    """Windows watched per alarm (first alarms; streams without one count as watched)."""
    lengths, came = run_lengths(z, h)
    return float(lengths.sum() / came.sum())


def test_decision_interval_matches_the_published_cusum_design():
    # the textbook two-sided CUSUM (k = 0.5, h = 4.77) has an in-control ARL of about 370
    assert decision_interval(370.0, 0.5) == pytest.approx(4.77, abs=0.02)
    assert siegmund_arl(decision_interval(365.0, K), K) == pytest.approx(365.0)


def test_false_alarm_rate_on_a_stationary_stream_matches_the_arl_setting():
    h = decision_interval(SETTINGS.arl, K)
    z = np.random.default_rng(0).standard_normal((STREAMS, WINDOWS))
    assert 0.8 * SETTINGS.arl < empirical_arl(z, h) < 1.25 * SETTINGS.arl


def test_a_stationary_rate_of_binomial_windows_keeps_the_arl():
    rate, rows = 0.02, 5000  # 100 expected positives per window
    h = decision_interval(SETTINGS.arl, K)
    counts = np.random.default_rng(1).binomial(rows, rate, size=(STREAMS, WINDOWS))
    z = InControl.rate(rate).standardise(counts / rows, np.full(counts.shape, rows))
    assert 0.75 * SETTINGS.arl < empirical_arl(z, h) < 1.33 * SETTINGS.arl


def test_a_one_sd_shift_is_caught_as_fast_as_siegmund_predicts():
    h = decision_interval(SETTINGS.arl, K)
    z = np.random.default_rng(2).standard_normal((STREAMS, 60)) + SETTINGS.shift_sd
    lengths, came = run_lengths(z, h)
    assert came.all()
    expected = siegmund_arl(h, K, shift=SETTINGS.shift_sd)  # about 10 windows
    assert lengths.mean() == pytest.approx(expected, rel=0.15)
    big, _ = run_lengths(z + 2.0, h)  # a 3-SD shift: within a few windows
    assert big.mean() == pytest.approx(siegmund_arl(h, K, shift=3.0), rel=0.15)
    assert np.mean(big <= 4) > 0.99


def test_charts_share_the_false_alarm_budget():
    columns = ["a", "b", "c", "d"]
    rng = np.random.default_rng(3)
    means = pd.DataFrame(rng.standard_normal((5, 4)), columns=columns)
    rows = pd.DataFrame(1, index=means.index, columns=columns)
    charts = control_charts(means, rows, dict.fromkeys(columns, InControl(0.0, 1.0)), SETTINGS)
    h = charts["a"].h
    assert h == pytest.approx(decision_interval(4 * SETTINGS.arl, K))
    # four independent charts together: a false alarm about once per `arl` windows
    z = rng.standard_normal((4, STREAMS, WINDOWS))
    upper, lower = cusum(z, K)
    alarms = ((upper > h) | (lower > h)).any(axis=0)
    came = alarms.any(axis=1)
    watched = np.where(came, alarms.argmax(axis=1) + 1, WINDOWS)
    assert 0.8 * SETTINGS.arl < watched.sum() / came.sum() < 1.4 * SETTINGS.arl


def test_between_window_spread_stops_big_windows_from_alarming_all_the_time():
    rng = np.random.default_rng(4)
    h = decision_interval(SETTINGS.arl, K)
    rows = np.full((STREAMS, 400), 10_000)
    # the window means wander by 0.02 beyond sampling: far more than a big window's SE
    means = rng.normal(0.0, 0.02, rows.shape) + rng.normal(0.0, 1.0, rows.shape) / np.sqrt(rows)
    naive = InControl(0.0, 1.0).standardise(means, rows)
    aware = InControl(0.0, 1.0, between_sd=0.02).standardise(means, rows)
    assert empirical_arl(naive, h) < 20
    assert empirical_arl(aware, h) > 0.7 * SETTINGS.arl


def test_a_window_without_data_leaves_the_sums_as_they_were():
    upper, lower = cusum(np.array([3.0, np.nan, 3.0, -1.0]), 0.5)
    np.testing.assert_allclose(upper, [2.5, 2.5, 5.0, 3.5])
    np.testing.assert_allclose(lower, [0.0, 0.0, 0.0, 0.5])
    z = InControl(0.0, 1.0).standardise(np.array([0.5, np.nan]), np.array([4, 0]))
    assert z[0] == pytest.approx(1.0)
    assert np.isnan(z[1])


@pytest.mark.parametrize(
    ("history", "count", "trips"),
    [
        ([False, True, False, True], 2, True),
        ([True, True, False, False], 1, False),
        ([True, True, True], 3, True),
        ([True], 1, False),
        ([], 0, False),
    ],
)
def test_k_of_n_counts_alarms_among_the_latest_windows(history, count, trips):
    verdict = k_of_n(history, alarms=2, of_last=3)
    assert (verdict.count, verdict.trips) == (count, trips)


def neutral_schema() -> Schema:
    return Schema.model_validate(
        {
            "columns": {
                "row_key": {"type": "string", "role": "id"},
                "size": {"type": "float"},
                "visits": {"type": "int"},
                "member": {"type": "bool"},
                "colour": {"type": "category", "categories": ["red", "blue"]},
                "outcome": {"type": "int", "role": "target", "allowed": [0, 1]},
            }
        }
    )


def test_every_numeric_feature_is_charted_by_default():
    schema = neutral_schema()
    assert charted_features(SETTINGS, schema) == ["size", "visits", "member"]
    chosen = SETTINGS.model_copy(update={"features": ["visits"]})
    assert charted_features(chosen, schema) == ["visits"]
    with pytest.raises(InputError, match="colour"):
        charted_features(SETTINGS.model_copy(update={"features": ["colour"]}), schema)


def test_a_feature_shift_alarms_on_its_chart_only():
    rng = np.random.default_rng(5)
    days = np.repeat(np.arange(30), 500)
    frame = pd.DataFrame(
        {
            "window": days,
            "size": rng.normal(10.0, 2.0, days.size),
            "visits": rng.poisson(3, days.size),
        }
    )
    frame.loc[frame["window"] >= 20, "size"] += 2.0 * 0.1  # a tenth of an SD: 2.2 SEs a window
    means, rows = window_means(frame, "window", ["size", "visits"])
    in_control = {"size": InControl(10.0, 2.0), "visits": InControl(3.0, np.sqrt(3.0))}
    charts = control_charts(means, rows, in_control, SETTINGS)
    assert not charts["size"].alarms[:20].any()
    assert charts["size"].alarms[-1]
    assert not charts["visits"].alarms.any()
    assert k_of_n(alarming(charts), SETTINGS.alarms, SETTINGS.of_last).trips
    assert list(charts["size"].frame().columns) == [
        "value",
        "rows",
        "z",
        "upper",
        "lower",
        "h",
        "alarm",
    ]


def test_the_positive_rate_is_charted_only_where_labels_are_mature():
    outcomes = pd.DataFrame(
        {
            "window": [0, 0, 1, 1],
            "label": [1.0, 0.0, 1.0, np.nan],
            "score": [0.9, 0.1, 0.8, 0.7],
        }
    )
    means, rows = log_statistics(outcomes, "window", 0.75, pd.Series({0: True, 1: False}))
    assert means.loc[0, POSITIVE_RATE] == 0.5
    assert np.isnan(means.loc[1, POSITIVE_RATE])
    assert rows.loc[1, POSITIVE_RATE] == 0
    assert means[FLAG_RATE].tolist() == [0.5, 0.5]
    assert means.loc[1, MEAN_SCORE] == pytest.approx(0.75)
