"""Scoring a fitted model: the helpers evaluation, review and serving share. Kept apart
from train.py so that editing them does not retrain the model."""

from __future__ import annotations

from typing import Any

import pandas as pd

from modelops.schema import Schema


def score(model: Any, frame: pd.DataFrame, schema: Schema) -> Any:
    """The probability of the positive class for each row."""
    return model.predict_proba(model_inputs(model, frame, schema))[:, 1]


def model_inputs(model: Any, frame: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """The columns the model was fitted on (a champion trained under an older schema
    still gets its own features); the schema's features for an unfitted model."""
    columns = list(getattr(model, "feature_names_in_", schema.features))
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise KeyError(f"the model needs column(s) {missing} that the data does not have")
    return frame[columns]
