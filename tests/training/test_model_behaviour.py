"""Model tests in the spirit of the ML Test Score, driven by params.yaml: the model beats
simple baselines, ignores the columns that must not matter (roles id, entity, ignore),
moves the way ``behaviour.expect`` says, and is reproducible. ``make behaviour`` runs
them on the pipeline's model and data as a merge gate."""

import numpy as np
import pandas as pd
import pytest

from modelops.config import load_settings
from modelops.schema import ColumnType, Role
from modelops.training.evaluate import evaluate
from modelops.training.scoring import score
from modelops.training.train import build_model, fit
from tests.conftest import PARAMS

HOLDOUT_ROWS = 5000  # enough for a stable mean score, quick to score twice per column


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """One test per column that must not matter, and per expected direction."""
    settings = load_settings(PARAMS)
    if "ignored" in metafunc.fixturenames:
        schema = settings.data_schema
        ignored = [
            c for role in (Role.ID, Role.ENTITY, Role.IGNORE) for c in schema.with_role(role)
        ]
        none = pytest.param(
            None, marks=pytest.mark.skip(reason="the schema has no id, entity or ignore column")
        )
        metafunc.parametrize("ignored", ignored or [none])
    if "expectation" in metafunc.fixturenames:
        expected = [pytest.param(e, id=f"{e[0]}-{e[1]}") for e in settings.behaviour.expect.items()]
        none = pytest.param(
            None,
            marks=pytest.mark.skip(
                reason=f"no expected directions: declare them in {PARAMS.name} behaviour.expect"
            ),
        )
        metafunc.parametrize("expectation", expected or [none])


@pytest.fixture(scope="module")
def evaluation(fitted, fitted_baselines, train_holdout, settings):
    return evaluate(
        fitted, fitted_baselines, train_holdout[1], settings.data_schema, settings.evaluation
    )


@pytest.mark.parametrize("metric", ["roc_auc", "average_precision"])
def test_beats_the_prior_credibly(evaluation, metric):
    """Better than guessing the positive rate. How it compares with the logistic baseline
    is what the baseline gates (gates.baselines) judge: on some data logistic ties or wins,
    a finding about the data rather than a broken model."""
    lift = evaluation.baselines["dummy"]["lift"][metric]
    assert lift["ci_low"] > 0, (
        f"model does not credibly beat guessing the prior on {metric}: {lift}"
    )


def test_invariant_to_columns_that_must_not_matter(fitted, train_holdout, settings, ignored):
    assert ignored not in fitted.named_steps["preprocess"].feature_names_in_
    holdout = train_holdout[1].head(HOLDOUT_ROWS)
    shuffled = holdout.assign(
        **{ignored: np.random.default_rng(0).permutation(holdout[ignored].to_numpy())}
    )
    np.testing.assert_array_equal(
        score(fitted, holdout, settings.data_schema), score(fitted, shuffled, settings.data_schema)
    )


def low_and_high(values: pd.Series, kind: ColumnType) -> tuple[object, object]:
    """A bool's False and True; else the 10th and 90th percentiles (observed values)."""
    if kind == ColumnType.BOOL:
        return False, True
    low, high = values.quantile([0.1, 0.9], interpolation="nearest")
    return low, high


def test_expected_direction(fitted, train_holdout, settings, expectation):
    feature, direction = expectation
    schema = settings.data_schema
    train, holdout = train_holdout[0], train_holdout[1].head(HOLDOUT_ROWS)
    low, high = low_and_high(train[feature], schema.columns[feature].type)
    assert low != high, f"'{feature}' has the same 10th and 90th percentile ({low}): no direction"
    at_low = score(fitted, holdout.assign(**{feature: low}), schema).mean()
    at_high = score(fitted, holdout.assign(**{feature: high}), schema).mean()
    change = at_high - at_low
    moved = change > 0 if direction == "increases" else change < 0
    assert moved, (
        f"raising '{feature}' from {low} to {high} should {direction.removesuffix('s')} the "
        f"mean score, but it moves it by {change:+.5f} ({at_low:.5f} to {at_high:.5f})"
    )


@pytest.mark.retrains
def test_same_seed_same_model_and_metrics(train_holdout, settings, fitted, evaluation):
    train, holdout = train_holdout
    again = fit(build_model(settings.data_schema, settings.model), train, settings.data_schema)
    np.testing.assert_array_equal(
        score(again, holdout, settings.data_schema),
        score(fitted, holdout, settings.data_schema),
        err_msg="a retrain gives other scores: does model.params set the estimator's seed "
        "(e.g. random_state)?",
    )
    rerun = evaluate(again, {}, holdout, settings.data_schema, settings.evaluation)
    assert rerun.metrics == evaluation.metrics
