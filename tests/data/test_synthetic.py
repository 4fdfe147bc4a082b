"""The synthetic data the template tests run on: valid for any schema, seeded, both label
forms, one broken frame per validation rule."""

import datetime as dt

import pandas as pd
import pytest

from modelops.config import load_settings
from modelops.data import synthetic
from modelops.data.validation import DataValidationError, validate
from modelops.schema import Schema
from tests.conftest import PARAMS, REPO

NOW = dt.datetime(2026, 1, 1)
ODD = Schema.model_validate(
    {
        "columns": {
            "key": {"type": "int", "role": "id"},
            "seen_at": {"type": "datetime", "role": "time"},
            "owner": {"type": "int", "role": "entity"},
            "note": {"type": "string", "role": "ignore", "nullable": True},
            "visits": {"type": "int", "nullable": True},
            "level": {"type": "int", "allowed": [1, 2, 3]},
            "score": {"type": "float"},
            "flag": {"type": "bool"},
            "tier": {"type": "category", "categories": ["a", "b"], "nullable": True},
            "label": {"type": "bool", "role": "target"},
        }
    }
)
SINGLE = Schema.model_validate(
    {"columns": {"x": {"type": "float", "min": 0}, "y": {"type": "int", "role": "target"}}}
)
SCHEMAS = {
    "configured": load_settings(PARAMS).data_schema,
    "churn": load_settings(REPO / "tests/params/churn.yaml").data_schema,
    "odd": ODD,
    "single": SINGLE,
}


@pytest.fixture(params=list(SCHEMAS))
def schema(request):
    return SCHEMAS[request.param]


def test_valid_frames_pass_validation(schema):
    frame = synthetic.valid(schema, 3000, seed=1, prepared=True)
    assert len(validate(frame, schema, now=NOW)) == 3000
    if schema.id_column:
        assert frame[schema.id_column].is_unique
    nullable = [n for n, c in schema.columns.items() if c.nullable]
    assert all(frame[n].isna().any() for n in nullable)
    assert not frame.drop(columns=nullable).isna().any().any()


def test_time_spans_whole_weeks_in_order(schema):
    if not schema.time_column:
        pytest.skip("no time column")
    times = synthetic.valid(schema, 3000, weeks=5)[schema.time_column]
    assert times.is_monotonic_increasing
    assert times.dt.to_period("W").nunique() == 5
    assert times.min() >= pd.Timestamp(synthetic.START)


def test_target_in_label_form_or_prepared(schema):
    labels = synthetic.valid(schema, 500, seed=2)[schema.target]
    prepared = synthetic.valid(schema, 500, seed=2, prepared=True)[schema.target]
    positive, negative = synthetic.target_labels(schema)
    assert set(labels) == {positive, negative}
    assert set(prepared) == {0, 1}
    assert (prepared == 1).tolist() == (labels == positive).tolist()


def test_string_target_keeps_its_declared_labels():
    churn = SCHEMAS["churn"]
    assert synthetic.target_labels(churn) == ("Yes", "No")
    assert set(synthetic.valid(churn, 200)["Churn"]) == {"Yes", "No"}


def test_same_seed_same_frame_other_seed_other_frame(schema):
    first = synthetic.valid(schema, 300, seed=4)
    pd.testing.assert_frame_equal(first, synthetic.valid(schema, 300, seed=4))
    assert not first.equals(synthetic.valid(schema, 300, seed=5))


@pytest.mark.parametrize("direction", ["increases", "decreases"])
def test_expected_directions_hold_in_the_data(direction):
    frame = synthetic.valid(ODD, 20_000, prepared=True, expect={"score": direction})
    low, high = frame["score"].quantile([0.2, 0.8])
    rate_low = frame.loc[frame["score"] <= low, "label"].mean()
    rate_high = frame.loc[frame["score"] >= high, "label"].mean()
    assert (rate_high > rate_low) == (direction == "increases")


def test_each_broken_frame_fails_validation_at_its_column(schema):
    cases = synthetic.invalid_cases(synthetic.valid(schema, 1000, prepared=True), schema)
    assert {"missing_column", "extra_column"} <= {case.rule for case in cases}
    for case in cases:
        with pytest.raises(DataValidationError) as info:
            validate(case.frame, schema, now=NOW)
        assert f"column '{case.column}'" in str(info.value), case.rule


def test_every_rule_has_a_broken_frame_when_the_schema_allows_it():
    frame = synthetic.valid(ODD, 100, prepared=True)
    assert [case.rule for case in synthetic.invalid_cases(frame, ODD)] == list(synthetic.RULES)
    few = synthetic.invalid_cases(synthetic.valid(SINGLE, 100, prepared=True), SINGLE)
    assert {case.rule for case in few} == {
        "wrong_type", "out_of_range", "null", "missing_column", "extra_column"
    }  # fmt: skip
