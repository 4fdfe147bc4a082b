"""A small schema and data built inline: the data tests hold for any adopted dataset."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from modelops.schema import Schema

COLUMNS: dict[str, dict[str, Any]] = {
    "id": {"type": "string", "role": "id"},
    "at": {"type": "datetime", "role": "time"},
    "amount": {"type": "float", "min": 0.01, "max": 1000},
    "hour": {"type": "int", "min": 0, "max": 23},
    "plan": {"type": "category", "categories": ["a", "b"]},
    "score": {"type": "float", "nullable": True},
    "flag": {"type": "bool"},
    "label": {"type": "int", "role": "target"},
}


def make_schema(**columns: dict[str, Any]) -> Schema:
    """The small schema, with some columns replaced or added (None drops one)."""
    merged = {**COLUMNS, **columns}
    return Schema.model_validate({"columns": {k: v for k, v in merged.items() if v is not None}})


def make_frame(rows: int = 200, seed: int = 0) -> pd.DataFrame:
    """Rows that satisfy ``make_schema()``; no feature predicts the label."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "id": [f"R{i:04d}" for i in range(rows)],
            "at": pd.Timestamp("2025-01-06")
            + pd.to_timedelta(rng.integers(0, 8 * 7 * 24, rows), "h"),
            "amount": rng.uniform(1, 900, rows).round(2),
            "hour": rng.integers(0, 24, rows),
            "plan": rng.choice(["a", "b"], rows),
            "score": np.where(rng.random(rows) < 0.1, np.nan, rng.normal(size=rows)),
            "flag": rng.random(rows) < 0.5,
            "label": (np.arange(rows) % 3 == 0).astype(int),
        }
    )


@pytest.fixture
def schema() -> Schema:
    return make_schema()


@pytest.fixture
def frame() -> pd.DataFrame:
    return make_frame()
