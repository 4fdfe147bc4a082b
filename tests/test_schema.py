import pytest
from pydantic import ValidationError

from modelops.schema import ColumnType, Schema


def test_roles_and_feature_groups(repo_settings):
    schema = repo_settings.data_schema
    assert schema.id_column == "transaction_id"
    assert schema.time_column == "timestamp"
    assert schema.entity_column == "card_id"
    assert "merchant_id" not in schema.features
    assert schema.categorical_features == ["merchant_category", "channel", "country"]
    assert "amount" in schema.numeric_features
    assert set(schema.features) == set(schema.categorical_features) | set(schema.numeric_features)


def columns(**extra):
    return {
        "y": {"type": "int", "role": "target"},
        "x": {"type": "float"},
        **extra,
    }


def test_minimal_schema_without_id_or_time():
    schema = Schema.model_validate({"columns": columns()})
    assert schema.id_column is None
    assert schema.time_column is None
    assert schema.features == ["x"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"z": {"type": "int", "role": "target"}}, "at most one column may have role 'target'"),
        ({"c": {"type": "category"}}, "non-empty 'categories'"),
        ({"c": {"type": "string", "min": 1}}, "min/max only apply"),
        ({"t": {"type": "int", "role": "time"}}, "must have type 'datetime'"),
        ({"f": {"type": "float", "min": 3, "max": 1}}, "greater than max"),
        ({"s": {"type": "string"}}, "features must be int, float, bool or category"),
    ],
)
def test_inconsistent_schema_is_rejected(extra, message):
    with pytest.raises(ValidationError, match=message):
        Schema.model_validate({"columns": columns(**extra)})


def test_every_type_has_a_pandas_dtype():
    from modelops.schema import PANDAS_DTYPES

    assert set(PANDAS_DTYPES) == set(ColumnType)
