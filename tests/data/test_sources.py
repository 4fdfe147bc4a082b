import numpy as np
import pandas as pd
import pytest

from modelops.data.sources import (
    ORIGIN,
    SOURCES,
    SourceError,
    Span,
    locate,
    read_files,
    read_raw,
    register,
)


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


def test_csv_cells_are_read_as_written(tmp_path):
    (tmp_path / "f.csv").write_text("a,b\nNA,null\n,x\n")
    read = read_files(tmp_path / "f.csv")
    assert read["a"].tolist() == ["NA", ""]  # the schema's markers decide what is missing
    assert read["b"].tolist() == ["null", "x"]


def test_files_record_where_each_row_came_from(tmp_path, frame):
    three = pd.concat([frame, frame.iloc[:1]], ignore_index=True)
    three.to_csv(tmp_path / "b.csv", index=False)
    frame.to_csv(tmp_path / "a.csv", index=False)
    frame.to_parquet(tmp_path / "c.parquet", index=False)
    read = read_files(tmp_path)
    assert read.attrs[ORIGIN] == [
        Span(f"{tmp_path}/a.csv", 0, 2),
        Span(f"{tmp_path}/b.csv", 2, 3),
        Span(f"{tmp_path}/c.parquet", 5, 2),
    ]
    assert [locate(read, label) for label in read.index] == [
        f"{tmp_path}/a.csv line 2",
        f"{tmp_path}/a.csv line 3",
        f"{tmp_path}/b.csv line 2",
        f"{tmp_path}/b.csv line 3",
        f"{tmp_path}/b.csv line 4",
        f"{tmp_path}/c.parquet row 1",
        f"{tmp_path}/c.parquet row 2",
    ]
    assert read_files(tmp_path / "c.parquet").attrs[ORIGIN] == [Span(f"{tmp_path}/c.parquet", 0, 2)]


def test_origin_follows_the_index_labels_of_a_subset(tmp_path, frame):
    frame.to_csv(tmp_path / "a.csv", index=False)
    subset = read_files(tmp_path / "a.csv").iloc[1:]
    assert locate(subset, subset.index[0]) == f"{tmp_path}/a.csv line 3"


def test_rows_of_unknown_origin_are_not_located(frame):
    assert locate(frame, 0) is None
    frame.attrs[ORIGIN] = [Span("a.csv", 0, 2)]
    assert locate(frame, 2) is None
    assert locate(frame, "x") is None
    assert locate(frame, np.int64(1)) == "a.csv line 3"
