"""The summary `make run` prints: metrics in the configured words, and plain warnings
when the action rate or the baseline margins cannot work out."""

from __future__ import annotations

import shutil

import pytest

from modelops import paths
from modelops.config import WordSettings
from modelops.io import write_json
from modelops.training.summary import (
    baseline_warnings,
    metric_labels,
    rate_warning,
    render,
    summary,
)
from tests.conftest import REPO

WORDS = WordSettings(record="claim", positive="denied", negative="paid")


def estimate(value: float, low: float, high: float) -> dict[str, float]:
    return {"value": value, "ci_low": low, "ci_high": high}


def outputs(positives: int = 12, review_rate: float = 0.02, lift_low: float = 0.05):
    """metrics.json, baselines.json and lineage.json, small."""
    metrics = {
        "roc_auc": estimate(0.9, 0.88, 0.92),
        "cost_per_1k": estimate(120.0, 110.0, 130.0),
        "holdout": {"rows": 1000, "positives": positives, "review_rate": review_rate,
                    "threshold": 0.3, "confidence": 0.95, "resamples": 100},
    }  # fmt: skip
    lift = {"roc_auc": estimate(0.06, lift_low, 0.07), "average_precision": estimate(0.2, 0.1, 0.3)}
    baselines = {"logistic": {"lift": lift}}
    lineage = {
        "model_id": "m-1",
        "model": {"estimator": "sklearn.ensemble.HistGradientBoostingClassifier"},
        "data": {"train": {"rows": 5000}},
    }
    return metrics, baselines, lineage


def test_metrics_and_counts_use_the_words():
    text = render(*outputs(), words=WORDS)
    assert "trained on 5,000 claims, evaluated on 1,000 holdout claims (12 denied cases)" in text
    assert "cost per 1,000 claims" in text
    assert metric_labels()["cost_per_1k"] == "cost per 1,000 records"
    assert metric_labels(WordSettings(record="person", records="people"))["cost_per_1k"] == (
        "cost per 1,000 people"
    )


def test_no_warning_when_the_settings_can_work():
    text = render(*outputs(), words=WORDS, margins={"roc_auc": 0.02, "average_precision": 0.05})
    assert "Warning" not in text


def test_an_action_rate_far_below_the_positive_rate_is_warned_about():
    metrics, _, _ = outputs(positives=100, review_rate=0.02)  # positive rate 10 %
    warning = rate_warning(metrics["holdout"], WORDS)
    assert warning is not None
    assert "most denied cases cannot be acted on at this rate" in warning
    assert "at most 20% of them can be flagged" in warning
    assert "Raise evaluation.review_rate in params.yaml if you can act on more claims" in warning
    assert warning in render(*outputs(positives=100), words=WORDS)
    # at half the positive rate or above, most positives can still be flagged
    assert rate_warning(outputs(positives=40)[0]["holdout"]) is None
    assert rate_warning(outputs(positives=0)[0]["holdout"]) is None


def test_a_model_not_beating_the_baseline_by_the_margin_is_warned_about():
    _, baselines, lineage = outputs(lift_low=0.01)
    margins = {"roc_auc": 0.02, "average_precision": 0.05, "log_loss": 0.5}
    (warning,) = baseline_warnings(baselines, margins, lineage["model"]["estimator"])
    assert "does not beat the logistic baseline by the configured margin" in warning
    assert "ROC-AUC lift +0.0600, lower bound +0.0100 < margin 0.02" in warning
    assert "average precision" not in warning  # its lower bound 0.1 clears 0.05
    assert "the baseline gates will fail on their merits" in warning.lower()
    assert (
        "a linear estimator (model.estimator: sklearn.linear_model.LogisticRegression with "
        "model.encoding: onehot), other features, or a smaller margin in gates.baselines"
    ) in warning
    assert warning in render(*outputs(lift_low=0.01), margins=margins)
    assert baseline_warnings(baselines, {}) == []
    linear = "sklearn.linear_model.LogisticRegression"
    (already,) = baseline_warnings(baselines, margins, linear)
    assert "a linear estimator" not in already


def test_summary_reads_the_outputs_and_the_settings(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copy(REPO / "params.yaml", "params.yaml")
    metrics, baselines, lineage = outputs(positives=100, lift_low=-0.01)
    for data, path in ((metrics, paths.METRICS), (baselines, paths.BASELINE_METRICS),
                       (lineage, paths.LINEAGE)):  # fmt: skip
        write_json(data, path)
    text = summary()
    assert text.count("Warning") == 2
    assert "does not beat the logistic baseline" in text


def test_summary_before_the_pipeline_ran_names_the_missing_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError):
        summary()
