import numpy as np
import pandas as pd
import pytest

from modelops.data.prepare import prepare
from modelops.data.sources import ORIGIN, Span, read_files
from modelops.data.validation import DataValidationError, validate
from modelops.schema import Schema


def make(target=None, **settings):
    """A schema with a float, an int, a category and a target column."""
    columns = {
        "x": {"type": "float", "nullable": True},
        "n": {"type": "int", "nullable": True},
        "c": {"type": "category", "categories": ["a", "b"], "nullable": True},
        "y": target or {"type": "int", "role": "target"},
    }
    return Schema.model_validate({"columns": columns, **settings})


def frame(**columns):
    base = {"x": ["1.5", "2", "3"], "n": [1, 2, 3], "c": ["a", "b", "a"], "y": [0, 1, 0]}
    return pd.DataFrame({**base, **columns})


def test_blank_strings_in_a_float_column_become_missing_numbers():
    prepared = prepare(frame(x=["29.85", " ", ""]), make())
    assert prepared["x"].dtype == "float64"
    assert prepared["x"].iloc[0] == 29.85
    assert prepared["x"].iloc[1:].isna().all()


def test_global_markers_apply_to_every_column():
    schema = make(missing_values=["", "NA", "?"])
    prepared = prepare(frame(x=["NA", "2", "?"], c=["a", "NA", " ? "]), schema)
    assert prepared["x"].isna().tolist() == [True, False, True]
    assert prepared["c"].isna().tolist() == [False, True, True]


def test_per_column_markers_apply_to_their_column_only():
    schema = make()
    schema = schema.model_copy(
        update={
            "columns": {
                **schema.columns,
                "c": schema.columns["c"].model_copy(update={"missing": ("unknown",)}),
            }
        }
    )
    prepared = prepare(frame(x=["unknown", "1", "2"], c=["unknown", "a", "b"]), schema)
    assert prepared["c"].isna().tolist() == [True, False, False]
    assert (
        prepared["x"].tolist()[0] == "unknown"
    )  # not a marker here: validation says "not a number"
    assert prepared["x"].dtype == object


def test_numeric_markers_apply_to_numeric_columns():
    schema = make(missing_values=["", "-999"])
    prepared = prepare(frame(n=[-999, 4, 5], x=[1.5, -999.0, 2.0]), schema)
    assert prepared["n"].isna().tolist() == [True, False, False]
    assert prepared["x"].isna().tolist() == [False, True, False]


def test_text_is_trimmed_unless_switched_off():
    raw = frame(c=[" a", "b ", " a "], x=[" 1.5 ", "2", " "])
    prepared = prepare(raw, make())
    assert prepared["c"].tolist() == ["a", "b", "a"]
    assert prepared["x"].iloc[0] == 1.5
    kept = prepare(raw, make(strip_strings=False))
    assert kept["c"].tolist() == [" a", "b ", " a "]
    assert kept["x"].tolist() == [" 1.5 ", "2", " "]  # " " is no marker: validation reports it


def test_the_callers_frame_is_not_changed_and_its_origin_is_kept():
    raw = frame(x=[" 1 ", "", "2"], c=[" a", "b", "a"], y=["1", "0", "0"])
    raw.attrs[ORIGIN] = [Span("a.csv", 0, 3)]
    before = raw.copy()
    prepared = prepare(raw, make())
    pd.testing.assert_frame_equal(raw, before)
    assert prepared.attrs[ORIGIN] == [Span("a.csv", 0, 3)]


def test_undeclared_and_absent_columns_are_left_to_validation():
    raw = frame().drop(columns=["y"]).assign(extra=[" z ", "", "z"])
    prepared = prepare(raw, make())
    assert "y" not in prepared.columns
    assert prepared["extra"].tolist() == [" z ", "", "z"]


@pytest.mark.parametrize(
    ("target", "values", "expected"),
    [
        ({"type": "int", "role": "target"}, [0, 1, 1, 0], [0, 1, 1, 0]),
        ({"type": "int", "role": "target"}, [0.0, 1.0, 1.0, 0.0], [0, 1, 1, 0]),
        ({"type": "int", "role": "target"}, ["0", " 1", "1.0", "0"], [0, 1, 1, 0]),
        ({"type": "int", "role": "target", "positive": 0}, [0, 1, 1, 0], [1, 0, 0, 1]),
        ({"type": "int", "role": "target", "positive": 2}, [2, 5, 5, 2], [1, 0, 0, 1]),
        ({"type": "bool", "role": "target"}, [False, True, True, False], [0, 1, 1, 0]),
        ({"type": "bool", "role": "target"}, np.array([False, True, True, False]), [0, 1, 1, 0]),
        ({"type": "bool", "role": "target"}, ["false", "TRUE", "True", "False"], [0, 1, 1, 0]),
        (
            {"type": "bool", "role": "target", "positive": False},
            [False, True, True, False],
            [1, 0, 0, 1],
        ),
        (
            {"type": "string", "role": "target", "positive": "Yes"},
            ["No", " Yes", "Yes ", "No"],
            [0, 1, 1, 0],
        ),
        ({"type": "string", "role": "target", "positive": "1"}, [0, 1, 1, 0], [0, 1, 1, 0]),
        (
            {
                "type": "category",
                "role": "target",
                "categories": ["churned", "stayed"],
                "positive": "churned",
            },
            pd.Categorical(["stayed", "churned", "churned", "stayed"]),
            [0, 1, 1, 0],
        ),
    ],
)
def test_target_becomes_0_or_1_by_its_positive_label(target, values, expected):
    raw = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "n": 1, "c": "a", "y": values})
    prepared = prepare(raw, make(target))
    assert prepared["y"].dtype == "int64"
    assert prepared["y"].tolist() == expected


def test_a_missing_target_value_stays_missing():
    target = {"type": "string", "role": "target", "positive": "Yes"}
    prepared = prepare(frame(y=["Yes", " ", "No"]), make(target))
    assert prepared["y"].isna().tolist() == [False, True, False]
    assert prepared["y"].iloc[0] == 1


def rejected(raw, schema):
    with pytest.raises(DataValidationError) as info:
        prepare(raw, schema, source="data/a.csv")
    (violation,) = info.value.violations
    assert violation.column == "y"
    return str(info.value)


def test_more_than_two_labels_are_rejected():
    target = {"type": "string", "role": "target", "positive": "Yes"}
    message = rejected(frame(y=["Yes", "No", "Maybe"]), make(target))
    assert "data validation failed for data/a.csv (3 rows)" in message
    assert (
        "column 'y': more than two labels: found 3 ('Maybe', 'No', 'Yes'), positive label 'Yes' "
        "(schema.columns.y.positive)"
    ) in message


def test_an_int_target_with_three_values_is_rejected():
    message = rejected(frame(y=[0, 1, 2]), make())
    assert "more than two labels: found 3 (0, 1, 2), positive label 1" in message


def test_a_positive_label_that_never_occurs_is_rejected():
    target = {"type": "string", "role": "target", "positive": "yes"}
    message = rejected(frame(y=["Yes", "No", "No"]), make(target))
    assert (
        "column 'y': the positive label never occurs: found 2 ('No', 'Yes'), positive label 'yes'"
        in message
    )


def test_a_bool_target_written_as_words_names_the_labels():
    message = rejected(frame(y=["yes", "no", "no"]), make({"type": "bool", "role": "target"}))
    assert "the positive label never occurs: found 2 ('no', 'yes'), positive label True" in message


def test_many_labels_are_listed_briefly():
    message = rejected(pd.DataFrame({"x": 1.0, "n": 1, "c": "a", "y": range(50)}), make())
    assert "found 50 (0, 1, 10, 11, 12, 13, 14, 15, 16, 17, '...')" in message


def test_csv_read_as_written_then_prepared(tmp_path):
    (tmp_path / "a.csv").write_text("x,n,c,y\n1.5,NA,a,No\n ,2, b ,Yes\nNA,,a,No\n")
    target = {"type": "string", "role": "target", "positive": "Yes"}
    prepared = prepare(read_files(tmp_path / "a.csv"), make(target, missing_values=["", "NA"]))
    assert prepared["x"].isna().tolist() == [False, True, True]
    assert prepared["n"].isna().tolist() == [True, False, True]
    assert prepared["c"].tolist() == ["a", "b", "a"]
    assert prepared["y"].tolist() == [0, 1, 0]


def test_numbers_in_text_columns_become_text_and_bool_text_becomes_bool():
    schema = Schema.model_validate(
        {
            "columns": {
                "row": {"type": "string", "role": "id"},
                "plan": {"type": "category", "categories": ["1", "2", "x"]},
                "paperless": {"type": "bool"},
                "y": {"type": "int", "role": "target"},
            }
        }
    )
    raw = pd.DataFrame(
        {
            "row": [101, 102, 103, 104],
            "plan": [1, 2, 1, 2],
            "paperless": ["true", "False", "1", "0"],
            "y": [0, 1, 1, 0],
        }
    )
    valid = validate(prepare(raw, schema), schema)
    assert valid["row"].tolist() == ["101", "102", "103", "104"]
    assert valid["plan"].tolist() == ["1", "2", "1", "2"]
    assert valid["paperless"].tolist() == [True, False, True, False]
