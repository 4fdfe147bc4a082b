import os

import pandas as pd
import pytest

from modelops.io import atomic_path, read_json, write_json, write_parquet


def test_outputs_get_the_usual_file_mode(tmp_path):
    mask = os.umask(0o022)
    try:
        path = write_json({"a": 1}, tmp_path / "out.json")
    finally:
        os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o644
    assert read_json(path) == {"a": 1}


def test_failed_write_keeps_the_previous_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "data.parquet"
    write_parquet(pd.DataFrame({"a": [1]}), target)
    before = target.read_bytes()

    def crash() -> None:
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half-written")
            raise RuntimeError("stage crashed")

    with pytest.raises(RuntimeError):
        crash()
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["data.parquet"]
