"""The example's model on the simulator's data: good but not perfect, as fraud models
are (a perfect score would mean leakage), and it moves the way params.yaml
``behaviour.expect`` says. With ``--pipeline-outputs`` (``make behaviour``) it checks
the pipeline's model and holdout instead."""

import pytest
from sklearn.metrics import roc_auc_score

from modelops.config import load_settings
from modelops.data.split import split
from modelops.training.scoring import score
from modelops.training.train import build_model, fit
from tests.conftest import PARAMS
from tests.training.test_model_behaviour import HOLDOUT_ROWS, low_and_high

pytestmark = pytest.mark.example


def expectations() -> list:
    return [
        pytest.param(feature, direction, id=f"{feature}-{direction}")
        for feature, direction in load_settings(PARAMS).behaviour.expect.items()
    ]


@pytest.fixture(scope="module")
def example_model(request, settings, pipeline_outputs):
    """(model, train, holdout): fitted on the simulator's weeks, or the pipeline's."""
    if pipeline_outputs:
        train, holdout = request.getfixturevalue("train_holdout")
        return request.getfixturevalue("fitted"), train, holdout
    schema = settings.data_schema
    train, holdout = split(request.getfixturevalue("simulated"), schema, settings.split)
    return fit(build_model(schema, settings.model), train, schema), train, holdout


def test_holdout_auc_is_realistic_not_perfect(example_model, settings):
    model, _, holdout = example_model
    schema = settings.data_schema
    assert 0.8 < roc_auc_score(holdout[schema.target], score(model, holdout, schema)) < 0.97


@pytest.mark.parametrize(("feature", "direction"), expectations())
def test_the_simulator_moves_the_declared_way(
    example_model, settings, pipeline_outputs, feature, direction
):
    if pipeline_outputs:
        pytest.skip("test_model_behaviour.py checks the declared directions on this model")
    model, train, holdout = example_model
    schema, rows = settings.data_schema, holdout.head(HOLDOUT_ROWS)
    low, high = low_and_high(train[feature], schema.columns[feature].type)
    change = (
        score(model, rows.assign(**{feature: high}), schema).mean()
        - score(model, rows.assign(**{feature: low}), schema).mean()
    )
    assert (change > 0) == (direction == "increases"), f"{feature} {low} -> {high}: {change:+.5f}"
