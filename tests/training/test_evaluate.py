import itertools

import pandas as pd
import pytest

from modelops.config import SliceSettings
from modelops.training.evaluate import evaluate, slice_labels
from modelops.training.metrics import METRICS


@pytest.fixture(scope="module")
def evaluation(fitted, fitted_baselines, train_holdout, settings):
    return evaluate(
        fitted, fitted_baselines, train_holdout[1], settings.data_schema, settings.evaluation
    )


def test_metrics_have_intervals_and_holdout_facts(evaluation, train_holdout, settings):
    holdout = train_holdout[1]
    for metric in METRICS:
        e = evaluation.metrics[metric]
        assert e["ci_low"] <= e["value"] <= e["ci_high"]
    facts = evaluation.metrics["holdout"]
    assert facts["rows"] == len(holdout)
    assert facts["positives"] == holdout[settings.data_schema.target].sum()


def test_baselines_are_reported_with_signed_lift(evaluation):
    assert set(evaluation.baselines) == {"dummy", "logistic"}
    dummy = evaluation.baselines["dummy"]
    assert dummy["metrics"]["roc_auc"]["value"] == pytest.approx(0.5)
    model_auc = evaluation.metrics["roc_auc"]["value"]
    assert dummy["lift"]["roc_auc"]["value"] == pytest.approx(model_auc - 0.5, abs=1e-5)
    # cost: lower is better, so lift = baseline cost - model cost
    model_cost = evaluation.metrics["cost_per_1k"]["value"]
    dummy_cost = dummy["metrics"]["cost_per_1k"]["value"]
    assert dummy["lift"]["cost_per_1k"]["value"] == pytest.approx(dummy_cost - model_cost, abs=1e-3)


def test_slices_cover_the_holdout(evaluation, train_holdout, settings):
    for item in settings.evaluation.slices:
        values = evaluation.slices[item.name]
        assert sum(v["rows"] for v in values.values()) == len(train_holdout[1])
        if item.bins is not None:
            bands = {f"{lo:g}-{hi:g}" for lo, hi in itertools.pairwise(item.bins)}
            assert set(values) <= bands | {"nan"}


def test_plot_tables(evaluation, train_holdout):
    plots = evaluation.plots
    roc = plots["roc"]
    assert roc["fpr"].iloc[0] == 0
    assert roc["tpr"].iloc[-1] == 1
    assert roc["fpr"].is_monotonic_increasing
    assert len(plots["confusion"]) == len(train_holdout[1])
    assert plots["confusion"]["predicted"].nunique() == 2
    shares = plots["score_distribution"].drop(columns="score")
    assert shares.shape[1] == 2
    assert shares.sum().tolist() == pytest.approx([1, 1], abs=1e-4)
    assert len(plots["calibration"]) > 2


def test_holdout_scores_keep_row_ids_for_later_comparison(evaluation, train_holdout, settings):
    scores, holdout = evaluation.holdout_scores, train_holdout[1]
    ids = settings.data_schema.id_column
    expected = holdout[ids] if ids else holdout.index
    assert scores[ids or "row"].tolist() == expected.tolist()
    assert scores["flagged"].mean() == pytest.approx(settings.evaluation.review_rate, abs=0.002)


def test_numeric_slice_bands():
    bands = SliceSettings(name="band", column="x", bins=[0, 25, 100, 500, 100000])
    labels = slice_labels(pd.DataFrame({"x": [0.5, 25, 25.01, 600, 100000]}), bands)
    assert labels.tolist() == ["0-25", "0-25", "25-100", "500-100000", "500-100000"]
