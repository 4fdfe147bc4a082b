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
    known = InControl(rate, np.sqrt(rate * (1 - rate)))  # the rate itself, not an estimate
    z = known.standardise(counts / rows, np.full(counts.shape, rows))
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


def in_control_windows(
    charts: int, rows: np.ndarray, reference_se: float, streams: int, seed: int
) -> np.ndarray:
    """Window means of independent in-control charts (mean 0, SD 1 per row) whose
    reference means were each estimated with error ``reference_se``: (charts, streams,
    windows)."""
    rng = np.random.default_rng(seed)
    offset = rng.standard_normal((charts, streams, 1)) * reference_se
    noise = rng.standard_normal((charts, streams, rows.size)) / np.sqrt(rows)
    return offset + noise


def latest_alarm_rate(means: np.ndarray, rows: np.ndarray, expected: InControl) -> float:
    """How often any chart alarms in the latest window, calibrated as control_charts."""
    columns = [str(i) for i in range(means.shape[0])]
    frame = pd.DataFrame(means[:, 0, :].T, columns=columns)
    counts = pd.DataFrame(dict.fromkeys(columns, rows))
    chart = control_charts(frame, counts, dict.fromkeys(columns, expected), SETTINGS)["0"]
    z = expected.standardise(means, rows)
    upper, lower = cusum(z, chart.k)
    return float(((upper[..., -1] > chart.h) | (lower[..., -1] > chart.h)).any(axis=0).mean())


@pytest.mark.parametrize(
    ("rows", "reference_rows"),
    [
        (np.full(26, 30_000.0), 360_000),  # half a year of the example's weeks
        (np.full(26, 200.0), 1_000),  # a small adoption: the reference barely larger
        (np.full(26, 30_000.0), None),  # a reference known exactly
    ],
)
def test_charts_together_keep_one_false_alarm_per_arl_checks(rows, reference_rows):
    reference_se = 0.0 if reference_rows is None else 1 / np.sqrt(reference_rows)
    means = in_control_windows(4, rows, reference_se, streams=40_000, seed=3)
    rate = latest_alarm_rate(means, rows, InControl(0.0, 1.0, reference_se=reference_se))
    assert rate <= 1 / SETTINGS.arl


def test_the_reference_offset_would_add_up_in_a_textbook_chart():
    """The same windows with the textbook h (no allowance for the shared offset) alarm
    far more often than the budget: the allowance is needed, not decoration."""
    rows, reference_se = np.full(26, 30_000.0), 1 / np.sqrt(360_000)
    means = in_control_windows(1, rows, reference_se, streams=40_000, seed=4)
    z = InControl(0.0, 1.0, reference_se=reference_se).standardise(means, rows)
    upper, lower = cusum(z, K)
    h = decision_interval(SETTINGS.arl, K)
    assert ((upper[..., -1] > h) | (lower[..., -1] > h)).mean() > 5 / SETTINGS.arl


def test_a_large_shift_still_alarms_at_once_despite_the_allowances():
    rows, reference_se = np.full(26, 30_000.0), 1 / np.sqrt(360_000)
    expected = InControl(0.0, 1.0, reference_se=reference_se)
    means = pd.DataFrame({"x": np.r_[np.zeros(25), 0.05]})  # a twentieth of an SD: 8.7 SEs
    counts = pd.DataFrame({"x": rows})
    chart = control_charts(means, counts, {"x": expected}, SETTINGS)["x"]
    assert not chart.alarms[:-1].any()
    assert chart.alarms[-1]


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
        "k",
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
