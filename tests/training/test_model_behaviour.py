"""Model tests in the spirit of the ML Test Score: the model beats simple baselines,
ignores fields that must not matter, moves the way the simulator's ground truth says,
and is reproducible."""

import numpy as np
import pytest

from modelops.training.evaluate import evaluate
from modelops.training.scoring import score
from modelops.training.train import build_model, fit


@pytest.fixture(scope="module")
def evaluation(fitted, fitted_baselines, train_holdout, settings):
    return evaluate(
        fitted, fitted_baselines, train_holdout[1], settings.data_schema, settings.evaluation
    )


@pytest.mark.parametrize("baseline", ["dummy", "logistic"])
@pytest.mark.parametrize("metric", ["roc_auc", "average_precision"])
def test_beats_baseline_credibly(evaluation, baseline, metric):
    lift = evaluation.baselines[baseline]["lift"][metric]
    assert lift["ci_low"] > 0, f"model does not credibly beat {baseline} on {metric}: {lift}"


def test_holdout_auc_is_realistic_not_perfect(evaluation):
    assert 0.8 < evaluation.metrics["roc_auc"]["value"] < 0.97


@pytest.mark.parametrize("column", ["transaction_id", "card_id", "merchant_id"])
def test_invariant_to_identifiers(fitted, train_holdout, settings, column):
    assert column not in fitted.named_steps["preprocess"].feature_names_in_
    holdout = train_holdout[1].head(2000)
    shuffled = holdout.assign(
        **{column: np.random.default_rng(0).permutation(holdout[column].to_numpy())}
    )
    np.testing.assert_array_equal(
        score(fitted, holdout, settings.data_schema), score(fitted, shuffled, settings.data_schema)
    )


def mean_score_change(model, frame, schema, **changes):
    return float(
        np.mean(score(model, frame.assign(**changes), schema) - score(model, frame, schema))
    )


@pytest.mark.parametrize(
    "changes",
    [
        {"new_device": True},  # account takeover and card testing use new devices
        {"txn_count_1h": 8},  # card testing bursts
        {"card_age_days": 20},  # bust-out uses young cards
    ],
    ids=["new-device", "velocity-burst", "young-card"],
)
def test_directional_expectations(fitted, train_holdout, settings, changes):
    legit = train_holdout[1].query("is_fraud == 0").head(3000)
    assert mean_score_change(fitted, legit, settings.data_schema, **changes) > 0


@pytest.mark.retrains
def test_same_seed_same_model_and_metrics(train_holdout, settings, fitted, evaluation):
    train, holdout = train_holdout
    again = fit(build_model(settings.data_schema, settings.model), train, settings.data_schema)
    np.testing.assert_array_equal(
        score(again, holdout, settings.data_schema), score(fitted, holdout, settings.data_schema)
    )
    rerun = evaluate(again, {}, holdout, settings.data_schema, settings.evaluation)
    assert rerun.metrics == evaluation.metrics
