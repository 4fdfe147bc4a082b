"""Upstream changes in the logged inputs: counted, named, and silent on clean data."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
import sqlalchemy as sa

from modelops.errors import InputError
from modelops.monitoring.counts import Window
from modelops.monitoring.upstream import (
    log_upstream,
    logged_fields,
    refused_fields,
    rejected_requests,
    service_refusals,
)
from modelops.schema import ColumnType, Schema
from tests.monitoring.conftest import T0, as_records, write_log

DAY = dt.timedelta(days=1)


def logged(frame: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """The fields a record sent to the service holds."""
    return frame[list(logged_fields(schema))]


def upstream(url, schema, profile):
    engine = sa.create_engine(url)
    try:
        return log_upstream(engine, schema, profile, Window(T0, T0 + DAY))
    finally:
        engine.dispose()


def first(schema: Schema, *types: ColumnType) -> str:
    found = [f for f in schema.features if schema.columns[f].type in types]
    if not found:
        pytest.skip(f"the schema has no {types} feature")
    return found[0]


def test_clean_window_has_no_schema_issues(log_url, window, schema, profile):
    write_log(log_url, logged(window.head(2000), schema))
    result = upstream(log_url, schema, profile)
    assert result.rows == 2000
    assert [i for i in result.issues if i.severity == "schema"] == []


def test_unit_change_is_out_of_the_reference_range(log_url, window, schema, profile):
    name = first(schema, ColumnType.FLOAT)
    frame = logged(window.head(2000), schema).copy()
    frame[name] = frame[name] * 100
    write_log(log_url, frame)
    issues = {(i.field, i.issue, i.severity): i for i in upstream(log_url, schema, profile).issues}
    ranged = [issues.get((name, "out_of_range", s)) for s in ("reference", "schema")]
    beyond = sum(i.rows for i in ranged if i is not None)
    assert beyond > 0.5 * frame[name].notna().sum()
    assert any(i is not None and name in i.field for i in ranged)


def test_new_category_type_change_null_and_fields_are_named(log_url, window, schema, profile):
    url = log_url
    category = first(schema, ColumnType.CATEGORY)
    number = first(schema, ColumnType.INT, ColumnType.FLOAT)
    required = next(f for f in schema.features if not schema.columns[f].nullable)
    records = as_records(logged(window.head(1000), schema))
    for i, record in enumerate(records[:18]):
        if i < 10:
            record[category] = "brand-new"  # 1 %
        elif i < 15:
            record[number] = "12.5"  # a number sent as text
        else:
            record[required] = None
    for record in records[20:24]:
        record["surprise"] = 1
    for record in records[24:26]:
        del record[required]
    write_log(url, records)
    issues = {(i.field, i.issue): i for i in upstream(url, schema, profile).issues}
    assert issues[category, "new_category"].rows == 10
    assert "'brand-new' (10)" in issues[category, "new_category"].detail
    assert issues[category, "new_category"].share == pytest.approx(0.01)
    assert issues[number, "type_change"].rows == 5
    assert "string (5)" in issues[number, "type_change"].detail
    assert issues[required, "null"].rows >= 3
    assert issues["surprise", "extra_field"].rows == 4
    assert issues[required, "missing_field"].rows == 2


def test_rejected_requests_from_the_metrics_text():
    text = """# HELP modelops_http_requests_total HTTP requests answered
# TYPE modelops_http_requests_total counter
modelops_http_requests_total{endpoint="/predict",status="200"} 900.0
modelops_http_requests_total{endpoint="/predict",status="422"} 37.0
modelops_http_requests_total{endpoint="/predict_batch",status="413"} 2.0
"""
    assert rejected_requests(text) == {("/predict", "422"): 37.0, ("/predict_batch", "413"): 2.0}


def test_refused_fields_from_the_metrics_text():
    text = """# HELP modelops_refused_fields_total Fields at fault in refused requests (400)
# TYPE modelops_refused_fields_total counter
modelops_refused_fields_total{field="signal"} 12.0
modelops_refused_fields_total{field="other"} 3.0
# HELP modelops_refused_fields_created Fields at fault in refused requests (400)
# TYPE modelops_refused_fields_created gauge
modelops_refused_fields_created{field="signal"} 1.7e9
"""
    assert refused_fields(text) == {"signal": 12.0, "other": 3.0}


def test_only_an_http_metrics_url_is_read():
    with pytest.raises(InputError, match="not http"):
        service_refusals("file:///etc/passwd")
