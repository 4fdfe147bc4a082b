"""The serving scorer: the fast path gives the Pipeline's exact scores; reason codes."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from modelops.config import Settings
from modelops.serving.contract import requests_from_frame
from modelops.serving.scorer import Scorer, reference_values
from modelops.training.scoring import score
from modelops.training.train import build_baselines, fit


@pytest.fixture(scope="module")
def scorer(settings: Settings, fitted: Any, train_holdout: tuple[pd.DataFrame, pd.DataFrame]):
    columns = list(fitted.feature_names_in_)
    return Scorer(
        fitted,
        settings.data_schema,
        reference_values(train_holdout[0], settings.data_schema, columns),
    )


def test_fast_path_scores_equal_the_pipeline_exactly(scorer, settings, fitted, train_holdout):
    holdout = train_holdout[1].head(5000)
    records = requests_from_frame(holdout, settings.data_schema)
    assert scorer.fast is not None, "the default model should take the fast path"
    expected = score(fitted, holdout, settings.data_schema)
    assert np.array_equal(scorer.score(records), expected)
    nullable = [
        c for c in settings.data_schema.features if settings.data_schema.columns[c].nullable
    ]
    assert all(holdout[c].isna().any() for c in nullable), "missing values are covered"


def test_fast_path_maps_unknown_and_missing_categories_as_the_pipeline(
    scorer, settings, fitted, train_holdout
):
    categorical = settings.data_schema.categorical_features
    if not categorical:
        pytest.skip("the schema has no category features")
    records = requests_from_frame(train_holdout[1].head(3), settings.data_schema)
    records[0][categorical[0]] = "carrier-pigeon"
    records[1][categorical[-1]] = None
    frame = pd.DataFrame(records)
    expected = fitted.predict_proba(frame[list(fitted.feature_names_in_)])[:, 1]
    assert np.array_equal(scorer.score(records), expected)


def test_models_the_fast_path_cannot_reproduce_use_the_pipeline(settings, train_holdout):
    train, holdout = train_holdout
    logistic = fit(
        build_baselines(settings.data_schema, settings.baselines)["logistic"],
        train,
        settings.data_schema,
    )
    columns = list(logistic.feature_names_in_)
    scorer = Scorer(
        logistic, settings.data_schema, reference_values(train, settings.data_schema, columns)
    )
    records = requests_from_frame(holdout.head(200), settings.data_schema)
    assert scorer.fast is None
    np.testing.assert_allclose(
        scorer.score(records), score(logistic, holdout.head(200), settings.data_schema)
    )


def test_reason_codes_name_features_whose_typical_value_lowers_the_score(
    scorer, settings, train_holdout
):
    holdout = train_holdout[1]
    risky = holdout.assign(
        s=scorer.score(requests_from_frame(holdout, settings.data_schema))
    ).nlargest(20, "s")
    records = requests_from_frame(risky, settings.data_schema)
    scores, reasons = scorer.score_and_explain(records, top=3)
    assert np.array_equal(scores, scorer.score(records)), "explaining does not change the score"
    for record, base, why in zip(records, scores, reasons, strict=True):
        assert 1 <= len(why) <= 3
        contributions = [r.contribution for r in why]
        assert contributions == sorted(contributions, reverse=True)
        assert contributions[0] > 0
        top = why[0]
        assert top.value == record[top.feature]
        replaced = scorer.score([{**record, top.feature: scorer.reference[top.feature]}])[0]
        assert base - replaced == pytest.approx(top.contribution, abs=1e-6)


def test_reason_codes_can_be_switched_off(scorer, settings, train_holdout):
    records = requests_from_frame(train_holdout[1].head(5), settings.data_schema)
    scores, reasons = scorer.score_and_explain(records, top=0)
    assert reasons == [[]] * 5
    assert np.array_equal(scores, scorer.score(records))
