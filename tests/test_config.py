from pathlib import Path

import pytest
import yaml

from modelops.config import ConfigError, load_settings
from modelops.schema import ColumnType
from tests.conftest import PARAMS


def write_params(tmp_path: Path, edit) -> Path:
    raw = yaml.safe_load(PARAMS.read_text())
    edit(raw)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_committed_params_load(repo_settings):
    schema = repo_settings.data_schema
    assert schema.columns[schema.target].role == "target"
    assert set(repo_settings.behaviour.expect) <= set(schema.features)


@pytest.mark.example
def test_the_example_params_describe_the_simulated_card_payments(repo_settings):
    assert repo_settings.data_schema.target == "is_fraud"
    assert repo_settings.model.estimator.endswith("HistGradientBoostingClassifier")


def test_out_of_range_value_names_the_field(tmp_path):
    path = write_params(tmp_path, lambda p: p.setdefault("split", {}).update(holdout_fraction=2))
    with pytest.raises(ConfigError, match=r"split\.holdout_fraction"):
        load_settings(path)


def test_unknown_key_is_rejected(tmp_path):
    path = write_params(tmp_path, lambda p: p.setdefault("split", {}).update(holdout_wekes=3))
    with pytest.raises(ConfigError, match=r"split\.holdout_wekes"):
        load_settings(path)


def slices(params: dict) -> list:
    return params.setdefault("evaluation", {}).setdefault("slices", [])


def test_slice_on_unknown_column_is_rejected(tmp_path):
    path = write_params(tmp_path, lambda p: slices(p).append({"name": "x", "column": "nope"}))
    with pytest.raises(ConfigError, match="no column 'nope'"):
        load_settings(path)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "absent.yaml")


def test_non_mapping_is_rejected(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_settings(path)


def test_slice_bins_must_increase(tmp_path, repo_settings):
    columns = repo_settings.data_schema.columns
    numeric = [n for n, c in columns.items() if c.type in (ColumnType.INT, ColumnType.FLOAT)]
    if not numeric:
        pytest.skip("the schema has no numeric column")
    path = write_params(
        tmp_path, lambda p: slices(p).append({"name": "b", "column": numeric[0], "bins": [5, 1]})
    )
    with pytest.raises(ConfigError, match="increasing edges"):
        load_settings(path)


def test_the_false_alarm_budget_must_leave_room_for_the_tests(tmp_path, repo_settings):
    monitoring = repo_settings.monitoring
    shares = 1 / monitoring.control.arl + 3 * monitoring.test_alpha
    assert shares == pytest.approx(monitoring.false_alarm_rate)  # the budget, all shared out
    path = write_params(
        tmp_path,
        lambda p: p["monitoring"].update(false_alarm_rate=0.01, control={"arl": 50}),
    )
    with pytest.raises(ConfigError, match=r"false_alarm_rate must exceed 1 / control\.arl"):
        load_settings(path)


def test_the_old_drift_fdr_setting_says_what_replaced_it(tmp_path):
    path = write_params(tmp_path, lambda p: p["monitoring"]["drift"].update(fdr=0.05))
    with pytest.raises(ConfigError, match="false_alarm_rate"):
        load_settings(path)
