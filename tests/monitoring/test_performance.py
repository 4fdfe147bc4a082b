import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.special import expit
from sklearn.metrics import roc_auc_score

from modelops.config import Settings
from modelops.monitoring.labels import ArrivalCurve
from modelops.monitoring.performance import (
    DECAY_METRICS,
    Status,
    estimates,
    expected_auc,
    holdout_metric,
    live_performance,
    performance_by_week,
    staleness,
    trained_until,
)
from modelops.monitoring.spc import MEAN_SCORE, InControl, control_charts, log_statistics
from modelops.training.metrics import Estimate

NOW = pd.Timestamp("2025-06-01", tz="UTC")


def exact(value: float) -> Estimate:
    """A holdout ROC-AUC known without error."""
    return Estimate(value, value, value)


SETTINGS = Settings.model_validate(
    {  # a neutral schema: nothing here is about the example
        "schema": {
            "columns": {
                "row_key": {"type": "string", "role": "id"},
                "seen_at": {"type": "datetime", "role": "time"},
                "signal": {"type": "float"},
                "segment": {"type": "int", "allowed": [0, 1]},
                "worth": {"type": "float", "min": 0},
                "outcome": {"type": "int", "role": "target", "allowed": [0, 1]},
            }
        },
        "evaluation": {
            "review_rate": 0.1,
            "decline_rate": 0.01,
            "bootstrap": {"n_resamples": 200, "seed": 3},
            "costs": {"missed_positive": "worth", "false_alarm": 1.0, "per_action": 0.5},
        },
        "monitoring": {"max_auc_drop": 0.02, "labels": {"min_maturity": 0.8, "min_positives": 20}},
    }
)
COMPLETE = {label: ArrivalCurve(np.array([0.0]), np.array([1.0]), 1) for label in (1, 0)}
ALPHA = SETTINGS.monitoring.test_alpha
A, B = -2.0, 1.5  # the true model: P(positive | signal) = expit(A + B * signal)


def world(rows: int, seed: int, flipped: float = 0.0) -> pd.DataFrame:
    """Calibrated scores of a fixed model on stationary inputs. ``flipped``: the share of
    rows (segment 1) whose relation to the inputs is reversed, a concept shift that
    leaves inputs and scores as they were."""
    rng = np.random.default_rng(seed)
    signal = rng.normal(0.0, 1.0, rows)
    segment = (rng.uniform(size=rows) < flipped).astype(int)
    score = expit(A + B * signal)
    truth = np.where(segment == 1, expit(A - B * signal), score)
    return pd.DataFrame(
        {
            "request_id": [f"{seed}-{i}" for i in range(rows)],
            "model_version": "m:v1",
            "route": "champion",
            "created_at": NOW - pd.to_timedelta(rng.uniform(30, 37, rows), unit="D"),
            "signal": signal,
            "segment": segment,
            "worth": rng.exponential(20.0, rows),
            "score": score,
            "label": rng.binomial(1, truth).astype(float),
        }
    )


def test_intervals_cover_the_true_auc():
    # binormal scores: positives' latent is N(1, 1), negatives' N(0, 1); AUC = Phi(1 / sqrt 2)
    truth = stats.norm.cdf(1 / np.sqrt(2))
    covered = []
    for seed in range(40):
        rng = np.random.default_rng(seed)
        y = rng.binomial(1, 0.1, 2000)
        frame = pd.DataFrame(
            {"y": y, "s": expit(rng.normal(y, 1.0) - 2), "worth": rng.exponential(5.0, y.size)}
        )
        auc = estimates(frame, "y", "s", SETTINGS)["roc_auc"]
        assert auc.value == pytest.approx(roc_auc_score(frame["y"], frame["s"]))
        covered.append(auc.ci_low <= truth <= auc.ci_high)
    assert np.mean(covered) >= 0.85  # nominal 0.95, 40 trials


def test_a_stable_mature_window_is_judged_and_not_decayed():
    window = world(6000, seed=1)
    holdout_auc = roc_auc_score(world(20_000, seed=2)["label"], world(20_000, seed=2)["score"])
    (found,) = live_performance(window, NOW, COMPLETE, SETTINGS, {"m:v1": exact(holdout_auc)})
    assert found.status == Status.JUDGED
    assert set(found.metrics) == set(DECAY_METRICS)
    assert found.auc_floor == pytest.approx(holdout_auc - 0.02)
    assert not found.decayed(ALPHA)
    assert found.label_free_reliable  # calibrated scores: the label-free estimate holds


def test_a_concept_shift_with_unchanged_inputs_is_caught_by_the_labels():
    stable, shifted = world(6000, seed=1), world(6000, seed=3, flipped=0.3)
    holdout_auc = roc_auc_score(world(20_000, seed=2)["label"], world(20_000, seed=2)["score"])
    (found,) = live_performance(shifted, NOW, COMPLETE, SETTINGS, {"m:v1": exact(holdout_auc)})
    assert found.status == Status.JUDGED
    assert found.decayed(ALPHA)
    assert found.metrics["roc_auc"].ci_high < holdout_auc - SETTINGS.monitoring.max_auc_drop
    assert found.label_free_reliable is False  # the scores no longer mean what they say
    # the inputs and scores did not move: their charts stay quiet
    both = pd.concat([stable.assign(window=0), shifted.assign(window=1)])
    means, rows = log_statistics(both, "window", 0.5, pd.Series({0: True, 1: True}))
    reference = {MEAN_SCORE: InControl(stable["score"].mean(), stable["score"].std())}
    chart = control_charts(means, rows, reference, SETTINGS.monitoring.control)[MEAN_SCORE]
    assert not chart.alarms.any()


def test_an_immature_window_is_shown_but_not_judged():
    shifted = world(6000, seed=3, flipped=0.3)
    half = {
        label: ArrivalCurve(np.array([0.0, 100.0]), np.array([0.5, 1.0]), 1) for label in (1, 0)
    }
    (found,) = live_performance(shifted, NOW, half, SETTINGS, {"m:v1": exact(0.85)})
    assert found.status == Status.PROVISIONAL
    assert found.completeness == pytest.approx(0.5)
    assert found.metrics["roc_auc"].value < 0.8  # shown...
    assert found.below_floor(ALPHA)  # shown below the floor...
    assert not found.decayed(ALPHA)  # ...but not judged
    assert found.label_free_reliable is None


def test_few_labelled_positives_are_not_judged_and_an_unknown_version_is_not_compared():
    window = world(60, seed=4)
    window["model_version"] = "m:v9"
    (found,) = live_performance(window, NOW, COMPLETE, SETTINGS, {"m:v1": exact(0.85)})
    assert found.positives < SETTINGS.monitoring.labels.min_positives
    assert found.status == Status.TOO_FEW_POSITIVES
    assert found.holdout_auc is None
    assert not found.decayed(ALPHA)


def test_each_version_and_route_is_measured_on_its_own():
    window = pd.concat(
        [
            world(3000, seed=5),
            world(3000, seed=6, flipped=0.5).assign(route="challenger", model_version="m:v2"),
        ]
    )
    found = live_performance(
        window, NOW, COMPLETE, SETTINGS, {"m:v1": exact(0.8), "m:v2": exact(0.8)}
    )
    by_route = {(f.model_version, f.route): f for f in found}
    assert set(by_route) == {("m:v1", "champion"), ("m:v2", "challenger")}
    assert not by_route["m:v1", "champion"].decayed(ALPHA)
    assert by_route["m:v2", "challenger"].decayed(ALPHA)


def test_the_holdouts_own_error_is_not_mistaken_for_decay():
    window = world(6000, seed=1)
    live = roc_auc_score(window["label"], window["score"])
    floor = live + 0.03  # the live ROC-AUC sits 0.03 under the floor...
    holdout = floor + SETTINGS.monitoring.max_auc_drop
    (sure,) = live_performance(window, NOW, COMPLETE, SETTINGS, {"m:v1": exact(holdout)})
    assert sure.decayed(ALPHA)  # ...a decay against an exactly known holdout...
    unsure = Estimate(holdout, holdout - 0.08, holdout + 0.08)  # ...a small holdout's luck
    (found,) = live_performance(window, NOW, COMPLETE, SETTINGS, {"m:v1": unsure})
    assert found.floor_p is not None
    assert sure.floor_p is not None
    assert found.floor_p > sure.floor_p
    assert not found.decayed(ALPHA)


LINEAGE = {
    "data": {"train": {"time_max": "2025-03-30 23:59:44"}},
    "metrics": {"roc_auc": {"value": 0.877, "ci_low": 0.866, "ci_high": 0.889}},
}


def test_staleness_is_the_age_of_the_training_data():
    assert trained_until(LINEAGE) == pd.Timestamp("2025-03-30 23:59:44", tz="UTC")
    assert holdout_metric(LINEAGE) == Estimate(0.877, 0.866, 0.889)
    old = staleness(LINEAGE, pd.Timestamp("2025-06-01", tz="UTC"), SETTINGS.monitoring)
    assert old.age_days == pytest.approx(62.0, abs=0.01)
    assert old.stale  # limit 56 days
    young = staleness(LINEAGE, pd.Timestamp("2025-04-10", tz="UTC"), SETTINGS.monitoring)
    assert not young.stale
    unknown = staleness({"data": {"train": {}}}, NOW, SETTINGS.monitoring)
    assert (unknown.age_days, unknown.stale) == (None, False)


def test_performance_by_week_shows_decay_as_the_holdout_ages():
    end = pd.Timestamp("2025-03-31")
    parts = []
    for week, flipped in enumerate([0.0, 0.15, 0.3, 0.45]):
        part = world(4000, seed=10 + week, flipped=flipped)
        part["seen_at"] = end + pd.to_timedelta(
            week * 7 + np.linspace(0.1, 6.9, len(part)), unit="D"
        )
        parts.append(part)
    parts[0].loc[:99, "label"] = np.nan  # not known yet: left out
    rare = world(100, seed=20)  # week 4: too few positives to measure
    rare["seen_at"] = end + pd.Timedelta(days=30)
    holdout = pd.concat([*parts, rare])
    weeks = performance_by_week(
        holdout,
        time="seen_at",
        label="label",
        score="score",
        trained_until=end.tz_localize("UTC"),
        settings=SETTINGS,
    )
    assert weeks.index.tolist() == [0, 1, 2, 3, 4]
    assert weeks["roc_auc"].iloc[:4].is_monotonic_decreasing
    assert weeks.loc[0, "roc_auc_low"] > weeks.loc[3, "roc_auc_high"]
    assert np.isnan(weeks.loc[4, "roc_auc"])
    assert weeks["rows"].tolist() == [3900, 4000, 4000, 4000, 100]


def test_the_label_free_estimate_matches_labels_when_scores_are_calibrated():
    window = world(5000, seed=7)
    guess = expected_auc(window["score"].to_numpy(), SETTINGS)
    labelled = estimates(window, "label", "score", SETTINGS)["roc_auc"]
    assert labelled.ci_low <= guess.value <= labelled.ci_high
    assert guess.value == pytest.approx(labelled.value, abs=0.02)
    assert guess.ci_high - guess.ci_low < labelled.ci_high - labelled.ci_low
