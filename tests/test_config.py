from pathlib import Path

import pytest
import yaml

from modelops.config import ConfigError, load_settings
from tests.conftest import REPO


def write_params(tmp_path: Path, edit) -> Path:
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    edit(raw)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_committed_params_load(repo_settings):
    assert repo_settings.data_schema.target == "is_fraud"
    assert repo_settings.model.estimator.endswith("HistGradientBoostingClassifier")


def test_out_of_range_value_names_the_field(tmp_path):
    path = write_params(tmp_path, lambda p: p["simulator"].update(fraud_rate=2))
    with pytest.raises(ConfigError, match=r"simulator\.fraud_rate"):
        load_settings(path)


def test_unknown_key_is_rejected(tmp_path):
    path = write_params(tmp_path, lambda p: p["split"].update(holdout_wekes=3))
    with pytest.raises(ConfigError, match=r"split\.holdout_wekes"):
        load_settings(path)


def test_slice_on_unknown_column_is_rejected(tmp_path):
    path = write_params(
        tmp_path, lambda p: p["evaluation"]["slices"].append({"name": "x", "column": "nope"})
    )
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


def test_slice_bins_must_increase(tmp_path):
    path = write_params(
        tmp_path,
        lambda p: p["evaluation"]["slices"].append(
            {"name": "b", "column": "amount", "bins": [5, 1]}
        ),
    )
    with pytest.raises(ConfigError, match="increasing edges"):
        load_settings(path)
