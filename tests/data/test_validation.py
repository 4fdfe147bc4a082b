import datetime as dt

import numpy as np
import pandas as pd
import pytest

from modelops.config import ModelSettings
from modelops.data.prepare import prepare
from modelops.data.sources import ORIGIN, read_files
from modelops.data.validation import DataValidationError, summarize, validate
from modelops.schema import Schema
from modelops.training.train import build_model, fit
from tests.data.conftest import make_schema

NOW = dt.datetime(2026, 1, 1)


def broken(frame, schema):
    with pytest.raises(DataValidationError) as info:
        validate(frame, schema, source="batch", now=NOW)
    return str(info.value), info.value.violations


def test_clean_data_passes_typed_and_ordered(frame, schema):
    valid = validate(frame[list(reversed(frame.columns))], schema, now=NOW)
    assert list(valid.columns) == list(schema.columns)
    assert str(valid["at"].dtype) == "datetime64[ns]"
    assert str(valid["label"].dtype) == "int64"
    assert len(valid) == len(frame)


def test_csv_strings_are_coerced(frame, schema, tmp_path):
    frame.to_csv(tmp_path / "b.csv", index=False)
    valid = validate(prepare(read_files(tmp_path / "b.csv"), schema), schema, now=NOW)
    pd.testing.assert_series_equal(valid["amount"], frame["amount"])
    pd.testing.assert_series_equal(valid["plan"], frame["plan"])
    assert ORIGIN not in valid.attrs  # the validated data is a new file


def test_target_is_checked_as_0_or_1_whatever_its_declared_type(frame):
    schema = make_schema(label={"type": "string", "role": "target", "positive": "yes"})
    valid = validate(
        prepare(frame.assign(label=frame["label"].map({1: "yes", 0: "no"})), schema),
        schema,
        now=NOW,
    )
    assert valid["label"].tolist() == frame["label"].tolist()
    message, _ = broken(frame.assign(label=frame["label"].map({1: "yes", 0: "no"})), schema)
    assert "column 'label': not an integer (pandera: coerce_dtype('int64'))" in message
    message, _ = broken(frame.assign(label=frame["label"] * 2), schema)
    assert "column 'label': not one of the allowed values [0, 1] (pandera: isin([0, 1]))" in message


def set_value(column, value, row=5):
    def change(frame):
        frame = frame.astype({column: object}) if isinstance(value, str) else frame
        frame.loc[row, column] = value
        return frame

    return change


NOT_NULLABLE = "missing value in a column that is not nullable"


@pytest.mark.parametrize(
    ("change", "expected", "example"),
    [
        (
            set_value("amount", "12,50"),
            "'amount': not a number (pandera: coerce_dtype('float64'))",
            "'12,50'",
        ),
        (
            set_value("hour", "seven"),
            "'hour': not an integer (pandera: coerce_dtype('int64'))",
            "'seven'",
        ),
        (
            set_value("at", "soon"),
            "'at': not a date/time (pandera: coerce_dtype('datetime64[ns]'))",
            "'soon'",
        ),
        (set_value("flag", "yes"), "'flag': not true/false (pandera: dtype('bool'))", "'yes'"),
        (
            set_value("amount", 0.001),
            "'amount': below the minimum 0.01 (pandera: greater_than_or_equal_to(0.01))",
            "0.001",
        ),
        (
            set_value("hour", 24),
            "'hour': above the maximum 23 (pandera: less_than_or_equal_to(23.0))",
            "24",
        ),
        (
            set_value("plan", "z"),
            "'plan': not one of the categories ['a', 'b'] (pandera: isin(['a', 'b']))",
            "'z'",
        ),
        (set_value("amount", np.nan), f"'amount': {NOT_NULLABLE} (pandera: not_nullable)", ""),
        (
            set_value("at", pd.Timestamp("2027-05-01")),
            "'at': in the future, after 2026-01-01 00:00 (pandera: not_after(2026-01-01 00:00))",
            "Timestamp('2027-05-01 00:00:00')",
        ),
    ],
)
def test_each_rule_is_said_in_plain_words_with_pandera_s_name(
    frame, schema, change, expected, example
):
    message, violations = broken(change(frame), schema)
    assert f"column {expected}: 1 row, e.g. row 5 (id=R0005)" in message
    assert message.endswith(f"row 5 (id=R0005): {example}" if example else "row 5 (id=R0005)")
    assert len(violations) == 1
    assert violations[0].rows == 1


def test_long_pandera_names_lose_their_arguments(frame):
    categories = ["a", "b", *(f"category-{i}" for i in range(5))]
    schema = make_schema(plan={"type": "category", "categories": categories})
    frame.loc[3, "plan"] = "z"
    message, _ = broken(frame, schema)
    assert f"column 'plan': not one of the categories {categories} (pandera: isin(...))" in message


def test_missing_integer_is_reported_once_as_a_missing_value(frame, schema):
    frame.loc[3, "hour"] = np.nan
    message, violations = broken(frame, schema)
    assert len(violations) == 1
    assert "column 'hour': missing value in a column that is not nullable" in message
    assert "not an integer" not in message


def test_duplicated_ids(frame, schema):
    frame.loc[10, "id"] = frame.loc[11, "id"]
    message, _ = broken(frame, schema)
    assert "column 'id': duplicated id (pandera: field_uniqueness): 2 rows" in message
    assert "row 10 (id=R0011): 'R0011'" in message


def test_missing_and_undeclared_columns(frame, schema):
    message, _ = broken(frame.drop(columns=["plan"]).assign(secret=1), schema)
    assert "column 'plan': column missing from the data (pandera: column_in_dataframe)" in message
    assert (
        "column 'secret': column not declared in schema.columns (pandera: column_in_schema)"
        in message
    )


def test_nulls_are_fine_where_allowed(frame, schema):
    frame["score"] = np.nan  # an empty nullable feature is not leakage either
    assert validate(frame, schema, now=NOW)["score"].isna().all()


def test_unknown_category_policy_ignore(frame, schema):
    frame.loc[1, "plan"] = "z"
    lenient = schema.model_copy(update={"unknown_categories": "ignore"})
    assert validate(frame, lenient, now=NOW).loc[1, "plan"] == "z"


def test_feature_that_encodes_the_label_is_leakage(frame, schema):
    frame["hour"] = frame["label"] * 7
    message, _ = broken(frame, schema)
    assert "column 'hour': label leakage: alone predicts 'label' with ROC-AUC 1.0000" in message
    assert "(pandera" not in message


def test_single_class_target_is_rejected(frame, schema):
    message, _ = broken(frame.assign(label=0), schema)
    assert (
        "column 'label': the target does not have both classes 0 and 1 (found only [0])" in message
    )


def test_empty_data_is_rejected(frame, schema):
    message, _ = broken(frame.iloc[:0], schema)
    assert "table: no rows (needs at least one)" in message


def test_every_broken_rule_is_reported_at_once_in_schema_order(frame, schema):
    frame.loc[1, "plan"] = "z"
    frame.loc[2, "amount"] = -1.0
    frame.loc[3, "hour"] = -1
    _, violations = broken(frame, schema)
    assert [v.column for v in violations] == ["amount", "hour", "plan"]


def test_examples_name_the_index_label_without_origin(frame, schema):
    tail = frame.iloc[100:].copy()
    tail.loc[150, "amount"] = -3.0
    message, _ = broken(tail, schema)
    assert "row 150 (id=R0150): -3.0" in message


def test_examples_without_an_id_column_name_the_row(frame):
    schema = make_schema(id=None)
    frame = frame.drop(columns=["id"])
    frame.loc[7, "hour"] = 99
    message, _ = broken(frame, schema)
    assert message.endswith("e.g. row 7: 99")


def test_at_most_five_examples(frame, schema):
    frame.loc[10:19, "hour"] = 30
    message, violations = broken(frame, schema)
    assert violations[0].rows == 10
    assert len(violations[0].examples) == 5
    assert "10 rows, e.g. row 10 (id=R0010): 30; row 11" in message


def write_csvs(frame, folder):
    """Three CSV files of 4, 3 and 5 rows, in name order."""
    folder.mkdir()
    frame.iloc[:4].to_csv(folder / "part-1.csv", index=False)
    frame.iloc[4:7].to_csv(folder / "part-2.csv", index=False)
    frame.iloc[7:12].to_csv(folder / "part-3.csv", index=False)
    return folder


def read_broken(path, schema):
    raw = read_files(path)
    with pytest.raises(DataValidationError) as info:
        validate(prepare(raw, schema), schema, source=str(path), now=NOW, raw=raw)
    return str(info.value)


def test_csv_folder_examples_name_each_file_and_line(frame, schema, tmp_path):
    frame = frame.head(12).astype({"amount": object})
    frame.loc[1, "amount"] = "n/a"  # part-1, data row 2: line 3
    frame.loc[5, "amount"] = "12,50"  # part-2, data row 2: line 3
    frame.loc[4, "hour"] = 30  # part-2, data row 1: line 2
    frame.loc[11, "plan"] = " "  # part-3, data row 5: line 6; blank, so missing
    folder = write_csvs(frame, tmp_path / "raw")
    message = read_broken(folder, schema)
    one, two, three = (f"{folder}/part-{i}.csv" for i in (1, 2, 3))
    assert message.splitlines()[1:] == [
        f"  - column 'amount': not a number (pandera: coerce_dtype('float64')): 2 rows, "
        f"e.g. {one} line 3 (id=R0001): 'n/a'; {two} line 3 (id=R0005): '12,50'",
        f"  - column 'hour': above the maximum 23 (pandera: less_than_or_equal_to(23.0)): "
        f"1 row, e.g. {two} line 2 (id=R0004): 30",
        f"  - column 'plan': {NOT_NULLABLE} (pandera: not_nullable): 1 row, "
        f"e.g. {three} line 6 (id=R0011): ' '",  # as written in the file
    ]


def test_single_csv_file_line_numbers_count_the_header(frame, schema, tmp_path):
    frame = frame.head(30)
    frame.loc[20, "hour"] = -2
    frame.to_csv(tmp_path / "data.csv", index=False)
    message = read_broken(tmp_path / "data.csv", schema)
    assert f"e.g. {tmp_path}/data.csv line 22 (id=R0020): -2" in message
    assert (tmp_path / "data.csv").read_text().splitlines()[21].startswith("R0020,")


def test_parquet_examples_name_the_file_and_row(frame, schema, tmp_path):
    folder = tmp_path / "raw"
    folder.mkdir()
    frame.loc[[2, 13], "plan"] = "z"
    frame.iloc[:10].to_parquet(folder / "week-0001.parquet", index=False)
    frame.iloc[10:].to_parquet(folder / "week-0002.parquet", index=False)
    message = read_broken(folder, schema)
    assert (
        f"2 rows, e.g. {folder}/week-0001.parquet row 3 (id=R0002): 'z'; "
        f"{folder}/week-0002.parquet row 4 (id=R0013): 'z'"
    ) in message


def test_summary(frame, schema):
    summary = summarize(validate(frame, schema, now=NOW), schema)
    assert summary["rows"] == 200
    assert summary["positives"] == 67
    assert summary["positive_rate"] == round(67 / 200, 6)
    assert summary["weeks"] == frame["at"].dt.to_period("W").nunique()


@pytest.mark.example
def test_committed_example_data_passes_preparation_and_validation(simulated, settings):
    """The example: the simulator's batches satisfy the committed schema."""
    schema = settings.data_schema
    batch = simulated.head(5_000)
    valid = validate(prepare(batch, schema), schema, now=NOW)
    assert list(valid.columns) == list(schema.columns)
    pd.testing.assert_series_equal(valid[schema.target], batch[schema.target].astype("int64"))


def test_a_nullable_int_feature_reaches_the_model_as_float():
    schema = Schema.model_validate(
        {
            "columns": {
                "visits": {"type": "int", "min": 0, "nullable": True},
                "y": {"type": "int", "role": "target"},
            }
        }
    )
    raw = pd.DataFrame({"visits": [1, None, 3, 4, 5, 6], "y": [0, 1, 0, 1, 0, 1]})
    valid = validate(prepare(raw, schema), schema)
    assert valid["visits"].dtype == "float64"
    assert valid["visits"].isna().sum() == 1
    model = fit(build_model(schema, ModelSettings()), valid, schema)
    assert model.predict_proba(valid[schema.features]).shape == (6, 2)


def test_only_the_time_column_must_not_lie_in_the_future():
    schema = Schema.model_validate(
        {
            "columns": {
                "due": {"type": "datetime", "role": "ignore"},
                "x": {"type": "float"},
                "y": {"type": "int", "role": "target"},
            }
        }
    )
    raw = pd.DataFrame(
        {"due": pd.to_datetime(["2099-01-01"] * 4), "x": [1.0, 2, 3, 4], "y": [0, 1, 0, 1]}
    )
    assert len(validate(prepare(raw, schema), schema)) == 4
