"""Schema inference for `make adopt`: types, ranges, markers, roles and clear refusals."""

import numpy as np
import pandas as pd
import pytest

from modelops.data.infer import InferenceError, infer
from modelops.data.prepare import prepare
from modelops.data.validation import validate
from modelops.schema import Schema


@pytest.fixture
def frame():
    rng = np.random.default_rng(0)
    n = 400
    return pd.DataFrame(
        {
            "customerID": [f"C-{i:04d}" for i in range(n)],
            "signup_date": pd.date_range("2024-01-01", periods=n, freq="D").astype(str),
            "tenure": rng.integers(1, 60, n),
            "charges": [
                " " if i % 40 == 0 else f"{x:.2f}" for i, x in enumerate(rng.uniform(5, 90, n))
            ],
            "rating": ["?" if i % 50 == 0 else str(i % 5) for i in range(n)],
            "partner": rng.choice(["Yes", "No"], n),
            "notes": [f"free text {i}" for i in range(n)],
            "churned": rng.choice(["Yes", "No"], n),
        }
    )


def test_types_ranges_markers_and_roles(frame):
    found = infer(frame, target="churned")
    cols = found.columns
    assert cols["customerID"] == {"type": "string", "role": "id"}
    assert cols["signup_date"] == {"type": "datetime", "role": "time"}
    assert cols["tenure"]["type"] == "int"
    assert cols["tenure"]["min"] == 0  # widened, but never below zero for counts
    assert cols["tenure"]["max"] >= frame["tenure"].max()
    assert cols["charges"]["type"] == "float"
    assert cols["charges"]["nullable"] is True
    assert "blank" in found.notes["charges"]
    assert cols["rating"] == {"type": "int", "min": 0, "max": 8, "missing": ["?"], "nullable": True}
    assert cols["partner"] == {"type": "category", "categories": ["No", "Yes"]}
    assert cols["notes"] == {"type": "string", "role": "ignore"}
    assert cols["churned"] == {"type": "string", "role": "target", "positive": "Yes"}
    assert found.yes_no_target


def test_the_inferred_schema_validates_its_own_data(frame):
    schema = Schema.model_validate({"columns": infer(frame, target="churned").columns})
    valid = validate(prepare(frame, schema), schema)
    assert set(valid["churned"]) == {0, 1}
    assert valid["charges"].isna().sum() == 10


def test_explicit_roles_win_over_names(frame):
    found = infer(frame, target="churned", time=None, id_column="notes")
    assert found.columns["notes"]["role"] == "id"
    assert found.columns["customerID"] == {"type": "string", "role": "ignore"}


def test_descriptive_labels_need_positive():
    frame = pd.DataFrame({"x": [1.0, 2, 3, 4], "y": ["benign", "malignant", "benign", "benign"]})
    with pytest.raises(InferenceError, match="POSITIVE=<label>"):
        infer(frame, target="y")
    found = infer(frame, target="y", positive="malignant")
    assert found.columns["y"]["positive"] == "malignant"
    assert (found.positive_label, found.negative_label) == ("malignant", "benign")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"target": "nope"}, "TARGET='nope' is not a column"),
        ({"target": "y", "positive": "maybe"}, "POSITIVE='maybe' is not a label"),
        ({"target": "x"}, "needs exactly two"),
        ({"target": "y", "time": "when"}, "TIME='when' is not a column"),
    ],
)
def test_refusals_name_the_argument(kwargs, message):
    frame = pd.DataFrame({"x": [1, 2, 3, 4], "y": ["Yes", "No", "Yes", "No"]})
    with pytest.raises(InferenceError, match=message):
        infer(frame, **kwargs)


def test_int_target_keeps_its_type():
    frame = pd.DataFrame({"x": [0.1, 0.2, 0.3, 0.4], "label": [0, 1, 0, 1]})
    assert infer(frame, target="label").columns["label"] == {
        "type": "int",
        "role": "target",
        "positive": 1,
    }


def test_an_empty_column_is_ignored_and_a_table_without_features_is_refused(tmp_path):
    frame = pd.DataFrame({"x": [1.0, 2, 3, 4], "Unnamed: 2": [None] * 4, "y": ["a", "b", "a", "b"]})
    found = infer(frame, target="y", positive="a")
    assert found.columns["Unnamed: 2"]["role"] == "ignore"
    assert Schema.model_validate({"columns": found.columns}).features == ["x"]
