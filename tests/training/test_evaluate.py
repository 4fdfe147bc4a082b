import itertools
from pathlib import Path

import pandas as pd
import pytest
import yaml

from modelops.config import SliceSettings, WordSettings
from modelops.training.evaluate import evaluate, slice_labels
from modelops.training.metrics import METRICS
from tests.conftest import REPO


@pytest.fixture(scope="module")
def evaluation(fitted, fitted_baselines, train_holdout, settings):
    return evaluate(
        fitted,
        fitted_baselines,
        train_holdout[1],
        settings.data_schema,
        settings.evaluation,
        words=settings.words,
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
            assert set(values) <= bands | {"nan"}  # missing values form their own slice


def test_plot_tables(evaluation, train_holdout, settings):
    plots = evaluation.plots
    roc = plots["roc"]
    assert roc["fpr"].iloc[0] == 0
    assert roc["tpr"].iloc[-1] == 1
    assert roc["fpr"].is_monotonic_increasing
    assert len(plots["confusion"]) == len(train_holdout[1])
    words = settings.words
    assert set(plots["confusion"]["predicted"]) == {words.negative, words.positive}
    assert plots["score_distribution"]["positive"].sum() == pytest.approx(1, abs=1e-4)
    assert plots["score_distribution"]["negative"].sum() == pytest.approx(1, abs=1e-4)
    assert len(plots["calibration"]) > 2


def test_plot_columns_are_the_ones_dvc_yaml_plots(evaluation):
    """The column names are fixed for any data, so dvc.yaml's plot definitions hold."""
    pipeline = yaml.safe_load((REPO / "dvc.yaml").read_text())
    for plot in pipeline["plots"]:
        (definition,) = plot.values()
        for file, columns in definition["y"].items():
            table = evaluation.plots[Path(file).stem]
            names = columns if isinstance(columns, list) else [columns]
            assert {definition["x"], *names} <= set(table.columns), file
    assert list(evaluation.plots["calibration"]) == ["mean_predicted", "fraction_positive"]
    assert list(evaluation.plots["score_distribution"]) == ["score", "negative", "positive"]


def test_confusion_classes_use_the_words(fitted, fitted_baselines, train_holdout, settings):
    words = WordSettings(record="claim", positive="denied", negative="paid")
    small = settings.evaluation.model_copy(
        update={"bootstrap": settings.evaluation.bootstrap.model_copy(update={"n_resamples": 50})}
    )
    got = evaluate(fitted, {}, train_holdout[1], settings.data_schema, small, words=words)
    confusion = got.plots["confusion"]
    assert set(confusion["actual"]) == set(confusion["predicted"]) == {"paid", "denied"}
    labels = train_holdout[1][settings.data_schema.target].to_numpy()
    assert (confusion["actual"] == "denied").sum() == labels.sum()


def test_holdout_scores_keep_row_ids_for_later_comparison(evaluation, train_holdout, settings):
    scores, holdout = evaluation.holdout_scores, train_holdout[1]
    ids = settings.data_schema.id_column
    expected = holdout[ids] if ids else holdout.index
    assert scores[ids or "row"].tolist() == expected.tolist()
    rate = settings.evaluation.review_rate
    assert scores["flagged"].mean() == pytest.approx(rate, abs=0.1 * rate)


def test_numeric_slice_bands():
    bands = SliceSettings(name="amount_band", column="amount", bins=[0, 25, 100, 500, 100000])
    frame = pd.DataFrame({"amount": [0.5, 25, 25.01, 600, 100000]})
    labels = slice_labels(frame, bands)
    assert labels.tolist() == ["0-25", "0-25", "25-100", "500-100000", "500-100000"]
