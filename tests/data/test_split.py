import pandas as pd
import pytest

from modelops.data.split import SplitError, split
from modelops.schema import Role, Schema


def test_time_split_holds_out_the_latest_weeks(train_holdout, settings):
    train, holdout = train_holdout
    assert train["timestamp"].max() < holdout["timestamp"].min()
    assert holdout["timestamp"].dt.to_period("W").nunique() == settings.split.holdout_weeks
    assert set(train["transaction_id"]).isdisjoint(holdout["transaction_id"])


def test_too_few_weeks_is_a_clear_error(transactions, settings):
    one_week = transactions[
        transactions["timestamp"] < transactions["timestamp"].min() + pd.Timedelta(days=6)
    ]
    with pytest.raises(SplitError, match="spans only 1 week"):
        split(one_week, settings.data_schema, settings.split)


def test_stratified_split_without_time_column(transactions, settings):
    columns = {
        name: spec.model_copy(update={"role": Role.IGNORE}) if spec.role == Role.TIME else spec
        for name, spec in settings.data_schema.columns.items()
    }
    schema = Schema.model_validate({"columns": {k: v.model_dump() for k, v in columns.items()}})
    _train, holdout = split(transactions, schema, settings.split)
    assert len(holdout) == pytest.approx(settings.split.holdout_fraction * len(transactions), abs=1)
    assert holdout["is_fraud"].mean() == pytest.approx(transactions["is_fraud"].mean(), rel=0.05)
    again = split(transactions, schema, settings.split)[1]
    assert holdout["transaction_id"].tolist() == again["transaction_id"].tolist()
