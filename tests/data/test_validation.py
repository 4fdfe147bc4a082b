import datetime as dt

import numpy as np
import pandas as pd
import pytest

from modelops.data.validation import DataValidationError, summarize, validate

NOW = dt.datetime(2026, 1, 1)


@pytest.fixture
def batch(transactions):
    return transactions.head(20_000).copy()


def broken(batch, schema, **kwargs):
    with pytest.raises(DataValidationError) as info:
        validate(batch, schema, source="batch.parquet", now=NOW, **kwargs)
    return str(info.value), info.value.violations


def test_clean_data_passes_typed_and_ordered(batch, settings):
    schema = settings.data_schema
    shuffled = batch[list(reversed(batch.columns))]
    valid = validate(shuffled, schema, now=NOW)
    assert list(valid.columns) == list(schema.columns)
    assert str(valid["timestamp"].dtype) == "datetime64[ns]"
    assert len(valid) == len(batch)


def test_csv_strings_are_coerced(batch, settings, tmp_path):
    batch.to_csv(tmp_path / "b.csv", index=False)
    valid = validate(pd.read_csv(tmp_path / "b.csv"), settings.data_schema, now=NOW)
    pd.testing.assert_series_equal(valid["amount"], batch["amount"].reset_index(drop=True))


def test_wrong_type_names_column_rule_and_example(batch, settings):
    batch = batch.astype({"amount": object})
    batch.loc[5, "amount"] = "12,50"
    message, violations = broken(batch, settings.data_schema)
    assert "column 'amount'" in message
    assert "coerce_dtype('float64')" in message
    assert "row 5 (transaction_id=" in message
    assert "'12,50'" in message
    assert violations[0].rows == 1


def test_out_of_range_values_are_counted(batch, settings):
    batch.loc[[3, 7, 9], "local_hour"] = 24
    message, violations = broken(batch, settings.data_schema)
    assert "column 'local_hour', rule 'less_than_or_equal_to(23" in message
    assert violations[0].rows == 3
    assert "3 rows" in message


def test_unknown_category_is_rejected_by_default(batch, settings):
    batch.loc[1, "channel"] = "telepathy"
    message, _ = broken(batch, settings.data_schema)
    assert "column 'channel', rule 'isin(" in message
    assert "'telepathy'" in message


def test_unknown_category_policy_ignore(batch, settings):
    batch.loc[1, "channel"] = "telepathy"
    lenient = settings.data_schema.model_copy(update={"unknown_categories": "ignore"})
    assert len(validate(batch, lenient, now=NOW)) == len(batch)


def test_missing_and_extra_columns(batch, settings):
    batch = batch.drop(columns=["country"]).assign(secret=1)
    message, _ = broken(batch, settings.data_schema)
    assert "column 'country', rule 'required column present'" in message
    assert "column 'secret', rule 'declared in schema" in message


def test_duplicated_ids(batch, settings):
    batch.loc[10, "transaction_id"] = batch.loc[11, "transaction_id"]
    message, _ = broken(batch, settings.data_schema)
    assert "column 'transaction_id', rule 'field_uniqueness': 2 rows" in message


def test_nulls_where_none_are_allowed(batch, settings):
    batch.loc[4, "amount"] = np.nan
    message, _ = broken(batch, settings.data_schema)
    assert "column 'amount', rule 'not_nullable': 1 row" in message


def test_nulls_are_fine_where_allowed(batch, settings):
    batch.loc[4, "distance_from_home_km"] = np.nan
    validate(batch, settings.data_schema, now=NOW)


def test_future_timestamps_are_leakage(batch, settings):
    batch.loc[2, "timestamp"] = pd.Timestamp("2027-05-01")
    message, _ = broken(batch, settings.data_schema)
    assert "column 'timestamp', rule 'not_after(2026-01-01 00:00)'" in message


def test_feature_that_encodes_the_label_is_leakage(batch, settings):
    batch["txn_count_1h"] = batch["is_fraud"] * 7
    message, _ = broken(batch, settings.data_schema)
    assert "column 'txn_count_1h', rule 'no label leakage" in message


def test_single_class_target_is_rejected(batch, settings):
    batch["is_fraud"] = 0
    message, _ = broken(batch, settings.data_schema)
    assert "has both classes" in message


def test_empty_data_is_rejected(batch, settings):
    message, _ = broken(batch.iloc[:0], settings.data_schema)
    assert "at least one row" in message


def test_every_broken_rule_is_reported_at_once(batch, settings):
    batch.loc[1, "channel"] = "telepathy"
    batch.loc[2, "amount"] = -1.0
    _, violations = broken(batch, settings.data_schema)
    assert {v.column for v in violations} == {"channel", "amount"}


def test_summary(transactions, settings):
    summary = summarize(transactions, settings.data_schema)
    assert summary["rows"] == len(transactions)
    assert summary["weeks"] == settings.simulator.weeks
    assert 0 < summary["positive_rate"] < 0.05


def test_examples_name_the_right_row_when_the_index_is_not_positional(batch, settings):
    tail = batch.iloc[1000:].copy()
    tail.loc[1500, "amount"] = -3.0
    message, _ = broken(tail, settings.data_schema)
    assert f"row 1500 (transaction_id={batch.loc[1500, 'transaction_id']})" in message


def test_empty_nullable_feature_is_not_leakage(batch, settings):
    batch["distance_from_home_km"] = np.nan
    assert len(validate(batch, settings.data_schema, now=NOW)) == len(batch)
