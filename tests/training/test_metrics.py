import numpy as np
import pytest
from sklearn import metrics as sk

from modelops.training.metrics import (
    METRICS,
    Holdout,
    Scored,
    bootstrap,
    compute_metrics,
    point_estimates,
    resample_weights,
)


@pytest.fixture
def data():
    rng = np.random.default_rng(3)
    n = 5000
    y = (rng.random(n) < 0.05).astype(float)
    # rounded scores: many ties, to check tie handling
    score = np.clip(0.3 * rng.random(n) + 0.4 * y * rng.random(n), 0, 1).round(2)
    holdout = Holdout(
        y=y, missed_cost=rng.uniform(1, 500, n), false_alarm_cost=np.zeros(n), action_cost=5.0
    )
    return holdout, Scored.at_review_rate(score, 0.05), rng


def test_weighted_metrics_match_scikit_learn(data):
    holdout, scored, rng = data
    w = rng.integers(0, 4, (3, holdout.y.size)).astype(np.float32)  # as resample_weights
    got = compute_metrics(w, holdout, scored)
    flagged = scored.flagged
    for i in range(3):
        y, s, sw = holdout.y, scored.score, w[i]
        assert got["roc_auc"][i] == pytest.approx(
            sk.roc_auc_score(y, s, sample_weight=sw), rel=1e-5
        )
        assert got["average_precision"][i] == pytest.approx(
            sk.average_precision_score(y, s, sample_weight=sw), rel=1e-5
        )
        assert got["log_loss"][i] == pytest.approx(sk.log_loss(y, s, sample_weight=sw))
        assert got["brier"][i] == pytest.approx(sk.brier_score_loss(y, s, sample_weight=sw))
        assert got["recall_at_review_rate"][i] == pytest.approx(
            sk.recall_score(y, flagged, sample_weight=sw)
        )
        assert got["precision_at_review_rate"][i] == pytest.approx(
            sk.precision_score(y, flagged, sample_weight=sw)
        )


def test_cost_counts_missed_amounts_and_review_fees(data):
    holdout, scored, _ = data
    flagged = scored.flagged
    missed = holdout.missed_cost[(holdout.y == 1) & ~flagged].sum()
    expected = 1000 * (missed + 5.0 * flagged.sum()) / holdout.y.size
    assert point_estimates(holdout, scored)["cost_per_1k"] == pytest.approx(expected)


def test_cost_counts_false_alarms_per_row():
    y = np.array([1.0, 0, 0, 1])
    scored = Scored.at_review_rate(np.array([0.9, 0.8, 0.1, 0.2]), 0.5)  # flags rows 0 and 1
    holdout = Holdout(y, np.array([10.0, 0, 0, 7]), np.array([0, 3.0, 4, 0]), action_cost=1.0)
    # missed: row 3 (7); false alarm: row 1 (3); actions: 2 x 1
    assert point_estimates(holdout, scored)["cost_per_1k"] == pytest.approx(1000 * 12 / 4)


def test_review_rate_flags_exactly_that_share_even_with_ties():
    distinct = Scored.at_review_rate(np.arange(1000) / 1000, 0.02)
    assert distinct.flagged.sum() == 20
    assert distinct.threshold == 0.98
    constant = Scored.at_review_rate(np.full(1000, 0.3), 0.02)
    assert constant.flagged.sum() == 20
    assert constant.threshold == 0.3


def test_resamples_draw_every_row_count_n_times():
    chunks = list(resample_weights(100, 120, seed=1, chunk=50))
    assert [c.shape for c in chunks] == [(50, 100), (50, 100), (20, 100)]
    assert all((c.sum(axis=1) == 100).all() for c in chunks)


def test_bootstrap_interval_brackets_the_estimate(data):
    holdout, scored, _ = data
    result = bootstrap(holdout, {"m": scored}, n_resamples=200, confidence=0.95, seed=0)
    for metric in METRICS:
        e = result.estimate("m", metric)
        assert e.ci_low <= e.value <= e.ci_high
    auc = result.estimate("m", "roc_auc")
    assert 0 < auc.ci_high - auc.ci_low < 0.1


def test_paired_difference_of_a_model_with_itself_is_exactly_zero(data):
    holdout, scored, _ = data
    result = bootstrap(
        holdout, {"a": scored, "b": scored}, n_resamples=100, confidence=0.95, seed=0
    )
    diff = result.difference("a", "b", "roc_auc")
    assert (diff.value, diff.ci_low, diff.ci_high) == (0, 0, 0)


def test_paired_interval_is_narrower_than_unpaired(data):
    holdout, scored, rng = data
    noisy = Scored.at_review_rate(scored.score + rng.normal(0, 0.02, scored.score.size), 0.05)
    result = bootstrap(holdout, {"a": scored, "b": noisy}, n_resamples=300, confidence=0.95, seed=0)
    diff = result.difference("a", "b", "roc_auc")
    single = result.estimate("a", "roc_auc")
    assert diff.ci_high - diff.ci_low < (single.ci_high - single.ci_low) / 2


def test_same_seed_same_intervals(data):
    holdout, scored, _ = data
    first = bootstrap(holdout, {"m": scored}, n_resamples=100, confidence=0.9, seed=5)
    second = bootstrap(holdout, {"m": scored}, n_resamples=100, confidence=0.9, seed=5)
    assert first.estimate("m", "average_precision") == second.estimate("m", "average_precision")


def test_expected_calibration_error_over_score_quantile_bins():
    rng = np.random.default_rng(3)
    score = rng.random(2000)
    y = (rng.random(2000) < score).astype(float)  # calibrated by construction
    holdout = Holdout(y, np.ones(2000), np.ones(2000))
    scored = Scored.at_review_rate(score, 0.1, calibration_bins=10)
    bins = np.array_split(np.argsort(score), 10)
    expected = sum(abs((y[b] - score[b]).sum()) for b in bins) / y.size
    assert point_estimates(holdout, scored)["ece"] == pytest.approx(expected)
    assert point_estimates(holdout, scored)["ece"] < 0.05
    doubled = Scored.at_review_rate(np.clip(score * 2, 0, 1), 0.1, calibration_bins=10)
    assert point_estimates(holdout, doubled)["ece"] > 0.2
