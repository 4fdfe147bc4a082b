"""Split integrity: measure() reports shared ids, time overlap and row counts from the
pipeline's files, and the rows the train stage fitted against those model.fit_rows
implies; measure_base() the same facts from the base commit's copied files. Data from
the schema (the session fixtures), so any adopted dataset passes."""

import json
import shutil

import pandas as pd
import pytest
import yaml

from modelops import paths
from modelops.io import write_json, write_parquet
from modelops.review.integrity import measure, measure_base, query_columns
from modelops.schema import Role, Schema
from modelops.training.lineage import describe_part
from tests.conftest import PARAMS, with_updates
from tests.stages import run_stage_script, stage_script

KEYS = {
    "validated_rows", "train", "holdout", "id_column", "shared_ids", "shared_id_examples",
    "time_column", "time_overlap_rows", "fitted_rows", "expected_fitted_rows", "fit_rows",
}  # fmt: skip


def write_split(train, holdout, validated_rows):
    """What the validate and split stages leave."""
    write_parquet(train, paths.TRAIN)
    write_parquet(holdout, paths.HOLDOUT)
    write_json({"rows": validated_rows}, paths.VALIDATION_REPORT)


def span(frame, column):
    return {"time_min": str(frame[column].min()), "time_max": str(frame[column].max())}


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def without_role(settings, role):
    """The settings with the schema's column of ``role`` ignored instead."""
    columns = {
        name: (spec.model_copy(update={"role": Role.IGNORE}) if spec.role == role else spec)
        for name, spec in settings.data_schema.columns.items()
    }
    schema = Schema.model_validate({"columns": {k: v.model_dump() for k, v in columns.items()}})
    return settings.model_copy(update={"data_schema": schema})


def test_a_clean_split_and_a_full_fit(workdir, settings, train_holdout):
    train, holdout = train_holdout
    write_split(train, holdout, len(train) + len(holdout))
    write_json({"fitted_rows": len(train)}, paths.TRAIN_RECORD)
    facts = measure(settings)
    assert set(facts) == KEYS
    json.dumps(facts, allow_nan=False)  # JSON-ready
    assert facts["validated_rows"] == facts["train"]["rows"] + facts["holdout"]["rows"]
    assert facts["train"]["rows"] == len(train)
    assert facts["holdout"]["rows"] == len(holdout)
    assert facts["fitted_rows"] == facts["expected_fitted_rows"] == len(train)
    assert facts["fit_rows"] == {"query": None, "sample": 1.0, "seed": 0}
    schema = settings.data_schema
    assert facts["id_column"] == schema.id_column
    assert facts["time_column"] == schema.time_column
    assert facts["shared_ids"] == (0 if schema.id_column else None)
    assert facts["shared_id_examples"] == []
    assert facts["time_overlap_rows"] == (0 if schema.time_column else None)
    if schema.time_column:
        assert facts["train"] == {"rows": len(train), **span(train, schema.time_column)}
        assert facts["holdout"] == {"rows": len(holdout), **span(holdout, schema.time_column)}


def test_holdout_rows_also_in_train_are_shared_ids(workdir, settings, train_holdout, id_column):
    train, holdout = train_holdout
    leaked = train.iloc[[10, 3, 7, 1, 20, 15, 2]]
    write_split(train, pd.concat([leaked, holdout]), len(train) + len(holdout))
    facts = measure(settings)
    assert facts["shared_ids"] == 7
    assert facts["shared_id_examples"] == [str(v) for v in leaked[id_column].head(5)]
    assert facts["holdout"]["rows"] + facts["train"]["rows"] == facts["validated_rows"] + 7


def test_without_an_id_column_there_are_no_shared_ids(workdir, settings, train_holdout, id_column):
    train, holdout = train_holdout
    write_split(train, pd.concat([train.head(5), holdout]), len(train) + len(holdout))
    facts = measure(without_role(settings, Role.ID))
    assert facts["id_column"] is None
    assert facts["shared_ids"] is None
    assert facts["shared_id_examples"] == []


def test_an_off_by_one_time_split_overlaps(workdir, settings, dataset, time_column):
    """The first holdout week also in training: the train part runs into the holdout."""
    week = dataset[time_column].dt.to_period("W").dt.start_time
    cutoff = week.drop_duplicates().sort_values().iloc[-settings.split.holdout_weeks]
    train, holdout = dataset[week <= cutoff], dataset[week >= cutoff]  # should be week < cutoff
    write_split(train, holdout, len(dataset))
    facts = measure(settings)
    first_week = int((week == cutoff).sum())
    assert first_week > 0
    assert facts["time_overlap_rows"] == first_week
    assert facts["train"]["time_max"] >= facts["holdout"]["time_min"]
    assert facts["train"]["rows"] + facts["holdout"]["rows"] == len(dataset) + first_week
    if settings.data_schema.id_column:
        assert facts["shared_ids"] == first_week


def test_without_a_time_column_there_is_no_overlap(workdir, settings, train_holdout, time_column):
    train, holdout = train_holdout
    write_split(train, holdout, len(train) + len(holdout))
    facts = measure(without_role(settings, Role.TIME))
    assert facts["time_column"] is None
    assert facts["time_overlap_rows"] is None
    assert facts["train"]["time_min"] is None


def test_rows_lost_in_the_split_show_against_the_validated_rows(workdir, settings, train_holdout):
    train, holdout = train_holdout
    write_split(train.iloc[100:], holdout, len(train) + len(holdout))
    facts = measure(settings)
    assert facts["train"]["rows"] + facts["holdout"]["rows"] == facts["validated_rows"] - 100


def test_rows_dropped_on_the_way_to_fit_show_against_the_expected(
    workdir, settings, train_holdout, monkeypatch
):
    """The train stage with a "clean the data" change: fitted rows fall short."""
    train, holdout = train_holdout
    train = train.head(4000)
    write_split(train, holdout, len(train) + len(holdout))
    script = stage_script("train")
    real_fit = script.fit
    monkeypatch.setattr(script, "fit", lambda m, rows, s: real_fit(m, rows.iloc[1000:], s))
    run_stage_script("train", settings, script)
    facts = measure(settings)
    assert facts["expected_fitted_rows"] == len(train)
    assert facts["fitted_rows"] == len(train) - 1000


def test_the_expected_rows_follow_a_declared_query_and_sample(workdir, settings, train_holdout):
    """measure() computes from the data what the train stage should fit, and they agree."""
    train, holdout = train_holdout
    train = train.head(4000)
    numbers = [c for c in settings.data_schema.numeric_features if train[c].nunique() > 2]
    if not numbers:
        pytest.skip("the schema has no numeric feature with more than two values")
    column = numbers[0]
    median = float(train[column].median())
    fit_rows = {"query": f"`{column}` <= {median!r}", "sample": 0.4, "seed": 5}
    declared = with_updates(
        settings, model={"fit_rows": settings.model.fit_rows.model_copy(update=fit_rows)}
    )
    write_split(train, holdout, len(train) + len(holdout))
    run_stage_script("train", declared)
    facts = measure(declared)
    assert facts["expected_fitted_rows"] == round(0.4 * int((train[column] <= median).sum()))
    assert facts["fitted_rows"] == facts["expected_fitted_rows"]
    assert facts["fit_rows"] == fit_rows


def test_a_query_the_data_cannot_answer_has_no_expectation(workdir, settings, train_holdout):
    train, holdout = train_holdout
    write_split(train, holdout, len(train) + len(holdout))
    rows = settings.model.fit_rows.model_copy(update={"query": "no_such_column > 0"})
    facts = measure(with_updates(settings, model={"fit_rows": rows}))
    assert facts["expected_fitted_rows"] is None
    assert facts["train"]["rows"] == len(train)


def test_the_query_columns_are_read():
    columns = ["a", "b c", "d"]
    assert query_columns("a > 1 and `b c` == 'x'", columns) == ["a", "b c"]
    assert query_columns(None, columns) == []


def test_nothing_measured_yet_is_none(workdir, settings):
    facts = measure(settings)
    assert set(facts) == KEYS
    assert facts["validated_rows"] is None
    assert facts["train"] == facts["holdout"] == {"rows": None, "time_min": None, "time_max": None}
    assert facts["shared_ids"] is None
    assert facts["time_overlap_rows"] is None
    assert facts["fitted_rows"] is None
    assert facts["expected_fitted_rows"] is None


# The base commit's facts, from the files `make champion` copies.

BASE = paths.CHAMPION / "base"


def write_base(settings, train, holdout, record=None):
    """The base commit's params.yaml, metrics/data.json, lineage and train record."""
    (BASE / "data").mkdir(parents=True, exist_ok=True)
    shutil.copy(PARAMS, BASE / "params.yaml")  # the params under test
    parts = {}
    for name, frame in (("train", train), ("holdout", holdout)):
        write_parquet(frame, BASE / f"data/{name}.parquet")
        parts[name] = describe_part(frame, BASE / f"data/{name}.parquet", settings.data_schema)
    write_json({"model_id": "m", "data": parts}, BASE / paths.LINEAGE)
    write_json({"rows": len(train) + len(holdout)}, BASE / paths.VALIDATION_REPORT)
    if record is not None:
        write_json(record, BASE / paths.TRAIN_RECORD)


def test_the_base_facts_come_from_its_lineage_and_train_record(workdir, settings, train_holdout):
    train, holdout = train_holdout
    record = {"train_rows": len(train), "selected_rows": len(train), "fitted_rows": len(train)}
    write_base(settings, train, holdout, record)
    base = measure_base()
    assert set(base) == KEYS
    json.dumps(base, allow_nan=False)
    assert base["validated_rows"] == len(train) + len(holdout)
    assert base["train"]["rows"] == len(train)
    assert base["holdout"]["rows"] == len(holdout)
    assert base["fitted_rows"] == base["expected_fitted_rows"] == len(train)
    assert base["id_column"] == settings.data_schema.id_column
    assert base["time_column"] == settings.data_schema.time_column
    assert base["shared_ids"] is None  # the base's data is not at hand
    assert base["time_overlap_rows"] is None
    time = settings.data_schema.time_column
    if time:
        assert base["train"] == {"rows": len(train), **span(train, time)}
    # the branch, measured the same way on the same data, gives the same facts
    write_split(train, holdout, len(train) + len(holdout))
    write_json(record, paths.TRAIN_RECORD)
    branch = measure(settings)
    for key in ("validated_rows", "train", "holdout", "fitted_rows", "expected_fitted_rows"):
        assert base[key] == branch[key], key


def test_a_base_before_the_train_record_has_no_fitted_rows(workdir, settings, train_holdout):
    train, holdout = train_holdout
    write_base(settings, train, holdout)
    base = measure_base()
    assert base["fitted_rows"] is None
    assert base["expected_fitted_rows"] == len(train)  # it fitted every train row
    assert base["train"]["rows"] == len(train)


def test_a_base_without_files_is_all_none(workdir):
    base = measure_base()
    assert set(base) == KEYS
    assert base["validated_rows"] is None
    assert base["train"] == {"rows": None, "time_min": None, "time_max": None}
    assert base["fitted_rows"] is None
    assert base["expected_fitted_rows"] is None
    assert base["fit_rows"] is None
    assert base["id_column"] is None


def test_a_base_with_a_query_expects_what_its_train_stage_selected(
    workdir, settings, train_holdout
):
    train, holdout = train_holdout
    write_base(settings, train, holdout, {"selected_rows": 123, "fitted_rows": 120})
    params = yaml.safe_load((BASE / "params.yaml").read_text())
    params["model"]["fit_rows"] = {"query": "x > 1", "sample": 0.5}
    (BASE / "params.yaml").write_text(yaml.safe_dump(params))
    base = measure_base()
    assert base["fit_rows"] == {"query": "x > 1", "sample": 0.5, "seed": 0}
    assert base["expected_fitted_rows"] == 123
    assert base["fitted_rows"] == 120
