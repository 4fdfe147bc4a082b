import pytest
import yaml
from pydantic import ValidationError

from modelops.config import read_params
from modelops.schema import ColumnType, Schema


@pytest.mark.example
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


def target(**spec):
    return columns(y={"role": "target", **spec})


@pytest.mark.parametrize("kind", ["string", "category"])
def test_a_labelled_target_must_name_its_positive_label(kind):
    spec = {"type": kind, "categories": ["Yes", "No"]} if kind == "category" else {"type": kind}
    with pytest.raises(ValidationError, match=r"target 'y' holds labels: set its 'positive' label"):
        Schema.model_validate({"columns": target(**spec)})
    schema = Schema.model_validate({"columns": target(**spec, positive="Yes")})
    assert schema.columns["y"].positive_label == "Yes"


def test_positive_label_defaults_to_1_or_true():
    assert Schema.model_validate({"columns": target(type="int")}).columns["y"].positive_label == 1
    schema = Schema.model_validate({"columns": target(type="bool")})
    assert schema.columns["y"].positive_label is True
    schema = Schema.model_validate({"columns": target(type="bool", positive=False)})
    assert schema.columns["y"].positive_label is False


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"type": "float"}, "must be a non-nullable int, bool, string or category"),
        ({"type": "int", "nullable": True}, "must be a non-nullable int, bool, string or category"),
    ],
)
def test_unusable_targets_are_rejected(spec, message):
    with pytest.raises(ValidationError, match=message):
        Schema.model_validate({"columns": target(**spec)})


def test_positive_only_on_the_target():
    with pytest.raises(ValidationError, match="'positive' only applies to the target"):
        Schema.model_validate({"columns": columns(x={"type": "int", "positive": 1})})


def test_preparation_settings_have_safe_defaults():
    schema = Schema.model_validate({"columns": columns(x={"type": "float", "missing": ["?"]})})
    assert schema.missing_values == ("",)
    assert schema.strip_strings is True
    assert schema.columns["x"].missing == ("?",)
    assert schema.columns["y"].missing == ()


PARAMS = """
schema:
  missing_values: {missing_values}
  columns:
    customerID: {{type: string, role: id}}
    Partner: {{type: category, categories: {categories}, missing: {missing}}}
    Churn: {{type: string, role: target, positive: {positive}}}
"""


def params(**values):
    quoted = {"missing_values": '[""]', "categories": '["Yes", "No"]', "missing": '["n/a"]'}
    text = PARAMS.format(**{**quoted, "positive": '"Yes"', **values})
    return yaml.safe_load(text)["schema"]


def test_quoted_yaml_labels_stay_strings():
    schema = Schema.model_validate(params())
    assert schema.columns["Partner"].categories == ("Yes", "No")
    assert schema.columns["Churn"].positive_label == "Yes"


@pytest.mark.parametrize(
    "unquoted",
    [
        {"categories": "[Yes, No]"},
        {"missing": "[no]"},
        {"missing_values": '["", off]'},
        {"positive": "Yes"},
    ],
)
def test_unquoted_yaml_booleans_are_refused_with_a_hint_to_quote(unquoted):
    data = params(**unquoted)
    with pytest.raises(ValidationError, match="quote the value") as info:
        Schema.model_validate(data)
    assert "YAML reads an unquoted true/false" in str(info.value)


def test_params_are_read_as_dvc_reads_them_yes_and_no_stay_text():
    """params.yaml is read with YAML 1.2 booleans, as DVC reads and rewrites it (`dvc exp
    run -S` writes "Yes" back unquoted); only true/false are booleans, and refused here."""
    text = PARAMS.format(
        missing_values="[off]", categories="[Yes, No]", missing="[n/a]", positive="Yes"
    )
    schema = Schema.model_validate(read_params(text)["schema"])
    assert schema.columns["Partner"].categories == ("Yes", "No")
    assert schema.missing_values == ("off",)
    assert schema.columns["Churn"].positive_label == "Yes"
    flags = PARAMS.format(
        missing_values='[""]', categories="[true, false]", missing="[]", positive='"x"'
    )
    with pytest.raises(ValidationError, match="quote the value"):
        Schema.model_validate(read_params(flags)["schema"])


def test_yaml_reads_unquoted_yes_as_a_boolean():
    """What the refusal guards against: the category list would hold True and False."""
    assert params(categories="[Yes, No]")["columns"]["Partner"]["categories"] == [True, False]


def test_a_category_targets_positive_label_is_one_of_its_categories():
    target = {"type": "category", "role": "target", "categories": ["stay", "leave"]}
    with pytest.raises(ValidationError, match="not one of the categories"):
        Schema.model_validate(
            {"columns": {"y": target | {"positive": "go"}, "x": {"type": "float"}}}
        )
    schema = Schema.model_validate(
        {"columns": {"y": target | {"positive": "leave"}, "x": {"type": "float"}}}
    )
    assert schema.columns["y"].positive_label == "leave"
