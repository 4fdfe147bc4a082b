import pandas as pd
import pytest

from modelops.data.split import SplitError, split
from modelops.schema import Role, Schema


def test_time_split_holds_out_the_latest_weeks(train_holdout, settings, time_column):
    train, holdout = train_holdout
    assert train[time_column].max() < holdout[time_column].min()
    assert holdout[time_column].dt.to_period("W").nunique() == settings.split.holdout_weeks
    ids = settings.data_schema.id_column
    if ids:
        assert set(train[ids]).isdisjoint(holdout[ids])


def test_too_few_weeks_is_a_clear_error(dataset, settings, time_column):
    times = dataset[time_column]
    one_week = dataset[times.dt.to_period("W") == times.dt.to_period("W").min()]
    with pytest.raises(SplitError, match="spans only 1 week"):
        split(one_week, settings.data_schema, settings.split)


def test_stratified_split_without_time_column(dataset, settings):
    columns = {
        name: spec.model_copy(update={"role": Role.IGNORE}) if spec.role == Role.TIME else spec
        for name, spec in settings.data_schema.columns.items()
    }
    schema = Schema.model_validate({"columns": {k: v.model_dump() for k, v in columns.items()}})
    target = schema.target
    _train, holdout = split(dataset, schema, settings.split)
    assert len(holdout) == pytest.approx(settings.split.holdout_fraction * len(dataset), abs=1)
    assert holdout[target].mean() == pytest.approx(dataset[target].mean(), rel=0.05)
    again = split(dataset, schema, settings.split)[1]
    pd.testing.assert_frame_equal(holdout, again)
