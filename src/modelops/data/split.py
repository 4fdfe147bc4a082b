"""Split validated data into train and holdout: by time when the schema has a time
column (the latest weeks are the holdout, as in production), else a seeded stratified
share."""

from __future__ import annotations

import pandas as pd
from sklearn.model_selection import train_test_split

from modelops.config import SplitSettings
from modelops.errors import InputError
from modelops.schema import Schema


class SplitError(InputError):
    """The data cannot be split as configured."""


def split(
    frame: pd.DataFrame, schema: Schema, settings: SplitSettings
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return (train, holdout)."""
    time = schema.time_column
    if time is None:
        train, holdout = train_test_split(
            frame,
            test_size=settings.holdout_fraction,
            stratify=frame[schema.target],
            random_state=settings.seed,
        )
        return train.sort_index(), holdout.sort_index()
    week = frame[time].dt.to_period("W").dt.start_time
    weeks = week.drop_duplicates().sort_values()
    if len(weeks) <= settings.holdout_weeks:
        raise SplitError(
            f"split.holdout_weeks is {settings.holdout_weeks} but the data spans only "
            f"{len(weeks)} week(s): nothing would be left to train on"
        )
    cutoff = weeks.iloc[-settings.holdout_weeks]
    is_holdout = week >= cutoff
    train, holdout = frame[~is_holdout], frame[is_holdout]
    for name, part in (("train", train), ("holdout", holdout)):
        if part[schema.target].nunique() < 2:
            raise SplitError(f"the {name} part has only one class of '{schema.target}'")
    return train.reset_index(drop=True), holdout.reset_index(drop=True)
