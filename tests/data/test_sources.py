import pandas as pd
import pytest

from modelops.data.sources import SOURCES, SourceError, read_files, read_raw, register


@pytest.fixture
def frame():
    return pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})


def test_reads_parquet_and_csv_files(tmp_path, frame):
    frame.to_parquet(tmp_path / "f.parquet", index=False)
    frame.to_csv(tmp_path / "f.csv", index=False)
    pd.testing.assert_frame_equal(read_files(tmp_path / "f.parquet"), frame)
    pd.testing.assert_frame_equal(read_files(tmp_path / "f.csv"), frame)


def test_folder_is_concatenated_in_name_order(tmp_path, frame):
    frame.iloc[1:].to_parquet(tmp_path / "week-0002.parquet", index=False)
    frame.iloc[:1].to_parquet(tmp_path / "week-0001.parquet", index=False)
    (tmp_path / "notes.txt").write_text("ignored")
    pd.testing.assert_frame_equal(read_files(tmp_path), frame)


def test_missing_path_and_empty_folder_and_unknown_type(tmp_path):
    with pytest.raises(SourceError, match="no such file"):
        read_files(tmp_path / "absent")
    with pytest.raises(SourceError, match="holds no"):
        read_files(tmp_path)
    (tmp_path / "data.json").write_text("{}")
    with pytest.raises(SourceError, match=r"unsupported file type '\.json'"):
        read_files(tmp_path / "data.json")


def test_unknown_source_lists_the_known_ones(tmp_path):
    with pytest.raises(SourceError, match=r"unknown data\.source 'warehouse'.*files"):
        read_raw("warehouse", tmp_path)


def test_registered_source_is_used(tmp_path, frame):
    register("constant")(lambda _path: frame)
    try:
        pd.testing.assert_frame_equal(read_raw("constant", tmp_path), frame)
    finally:
        SOURCES.pop("constant")
