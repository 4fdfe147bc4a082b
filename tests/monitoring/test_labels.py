import numpy as np
import pandas as pd
import pytest
from scipy import stats

from modelops.config import LabelSettings
from modelops.monitoring.labels import (
    ArrivalCurve,
    arrival_curve,
    arrival_curves,
    days,
    expected_completeness,
    known_labels,
    load_outcomes,
    window_maturity,
    window_of,
)
from modelops.serving.predlog import FEEDBACK, PREDICTIONS, make_engine, migrate

NOW = pd.Timestamp("2025-06-01", tz="UTC")
DELAY = stats.gamma(a=2.0, scale=5.0)  # days; mean 10, a long right tail


def delayed_log(rows: int, span_days: float, seed: int = 0) -> pd.DataFrame:
    """Predictions spread over the last ``span_days``, each labelled after a gamma
    delay; a label not due by NOW has not arrived."""
    rng = np.random.default_rng(seed)
    created = NOW - pd.to_timedelta(rng.uniform(0, span_days, rows), unit="D")
    due = created + pd.to_timedelta(DELAY.rvs(size=rows, random_state=rng), unit="D")
    label = rng.binomial(1, 0.3, rows).astype(float)
    arrived = due <= NOW
    return pd.DataFrame(
        {
            "request_id": [f"r{i}" for i in range(rows)],
            "route": "champion",
            "created_at": created,
            "label": np.where(arrived, label, np.nan),
            "received_at": pd.Series(due).where(arrived),
        }
    )


def test_arrival_curve_recovers_a_known_delay_distribution():
    # the log is 60 days old: plenty of recent predictions whose labels are still due
    log = delayed_log(20_000, span_days=60)
    curve = arrival_curve(log["created_at"], log["received_at"], NOW)
    grid = np.array([2.0, 5.0, 10.0, 20.0, 30.0])
    truth = DELAY.cdf(grid) / DELAY.cdf(60)  # what the log can show: delays up to 60 days
    np.testing.assert_allclose(curve(grid), truth, atol=0.03)
    # the plain empirical CDF of the delays that came is biased towards short delays
    arrived = days(log["received_at"] - log["created_at"])
    naive = np.array([np.nanmean(arrived <= d) for d in grid])
    assert np.abs(naive - truth).max() > 0.08


def test_with_every_prediction_old_enough_the_curve_is_the_empirical_cdf():
    created = pd.Series(NOW - pd.to_timedelta([100, 100, 100, 100], unit="D"))
    received = created + pd.to_timedelta([1, 2, 2, 5], unit="D")
    curve = arrival_curve(created, received, NOW)
    np.testing.assert_allclose(
        curve(np.array([0.5, 1, 1.5, 2, 4.9, 5, 50])), [0, 0.25, 0.25, 0.75, 0.75, 1, 1]
    )


def test_without_labels_nothing_is_complete():
    created = pd.Series([NOW - pd.Timedelta(days=30)])
    curve = arrival_curve(created, pd.Series([pd.NaT], dtype="datetime64[ns, UTC]"), NOW)
    assert curve.labels == 0
    assert curve(np.array([100.0])).tolist() == [0.0]


def two_speed_curves() -> dict[int, ArrivalCurve]:
    """Positives all in by day 10; negatives by day 40 (linear)."""
    grid = np.arange(1.0, 41.0)
    return {
        1: ArrivalCurve(grid, np.minimum(grid / 10, 1.0), 100),
        0: ArrivalCurve(grid, grid / 40, 100),
    }


def test_a_window_is_as_complete_as_its_slower_class_unless_only_positives_are_reported():
    created = pd.Series([NOW - pd.Timedelta(days=20)])
    both = LabelSettings()
    positives_only = LabelSettings(unlabelled="negative")
    curves = two_speed_curves()
    assert expected_completeness(created, NOW, curves, both) == pytest.approx([0.5])
    assert expected_completeness(created, NOW, curves, positives_only) == pytest.approx([1.0])
    outcomes = pd.DataFrame({"label": [1.0, np.nan, 0.0]})
    assert known_labels(outcomes, both).isna().tolist() == [False, True, False]
    assert known_labels(outcomes, positives_only).tolist() == [1.0, 0.0, 0.0]


def test_recent_windows_are_immature_and_old_ones_mature():
    log = delayed_log(5_000, span_days=70, seed=1)
    log["window"] = window_of(log["created_at"], NOW, 7)
    curves = arrival_curves(log, NOW)
    maturity = window_maturity(log, "window", NOW, curves, LabelSettings(min_maturity=0.8))
    assert len(maturity) == 10
    assert maturity.index[-1] == NOW - pd.Timedelta(days=7)
    assert maturity["completeness"].is_monotonic_decreasing
    assert not maturity["mature"].iloc[-1]  # the last week: labels mostly still due
    assert maturity["mature"].iloc[:5].all()  # five weeks and older: DELAY.cdf(35) = 0.99
    assert maturity["completeness"].iloc[0] == pytest.approx(1.0, abs=0.02)
    # the expected completeness matches the share of labels actually in (every row gets one)
    actual = log.groupby("window")["label"].apply(lambda s: s.notna().mean())
    np.testing.assert_allclose(maturity["completeness"], actual, atol=0.05)


def test_windows_end_at_the_checks_time():
    created = pd.Series(NOW - pd.to_timedelta([0.5, 6.9, 7.0, 7.1, 20], unit="D"))
    starts = window_of(created, NOW, 7)
    assert (starts == NOW - pd.to_timedelta([7, 7, 7, 14, 21], unit="D")).all()


def test_outcomes_load_a_window_with_labels_and_chosen_inputs_only(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'log.db'}")
    migrate(engine)
    base = {"automation": "partial", "decision": "approve", "latency_ms": 1.0, "reasons": []}

    def prediction(request: str, route: str, version: str, age: float, score: float, worth: float):
        return {
            **base, "request_id": request, "record_id": request, "route": route,
            "model_version": version, "created_at": NOW - pd.Timedelta(days=age),
            "score": score, "inputs": {"worth": worth, "other": "text"},
        }  # fmt: skip

    predictions = [
        prediction("a", "champion", "m:v1", 3, 0.9, 12.5),
        prediction("a", "shadow", "m:v2", 3, 0.8, 12.5),
        prediction("b", "champion", "m:v1", 2, 0.1, 3.0),
        prediction("c", "champion", "m:v1", 20, 0.2, 1.0),  # before the window
    ]
    with engine.begin() as connection:
        connection.execute(PREDICTIONS.insert(), predictions)
        connection.execute(
            FEEDBACK.insert(),
            [
                {
                    "request_id": "a",
                    "record_id": "1",
                    "label": 1,
                    "received_at": NOW - pd.Timedelta(days=1),
                }
            ],
        )
    frame = load_outcomes(engine, NOW - pd.Timedelta(days=7), NOW, fields=["worth"])
    engine.dispose()
    assert "inputs" not in frame.columns
    assert frame["request_id"].tolist() == ["a", "a", "b"]
    assert frame["label"].tolist()[:2] == [1.0, 1.0]  # the shadow row shares the label
    assert np.isnan(frame["label"].iloc[2])
    assert frame["worth"].tolist() == [12.5, 12.5, 3.0]
    assert str(frame["created_at"].dt.tz) == "UTC"
    assert days(frame["received_at"] - frame["created_at"])[0] == pytest.approx(2.0)
