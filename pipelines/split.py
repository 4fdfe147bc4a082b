"""Stage split: train and holdout, by time when the schema has a time column."""

import logging

import pandas as pd

from modelops import paths
from modelops.config import Settings
from modelops.data.split import split
from modelops.io import write_parquet
from modelops.stage import run_stage


def main(settings: Settings, log: logging.Logger) -> None:
    """Split validated data into train and holdout."""
    train, holdout = split(pd.read_parquet(paths.VALIDATED), settings.data_schema, settings.split)
    write_parquet(train, paths.TRAIN)
    write_parquet(holdout, paths.HOLDOUT)
    log.info("train %s rows, holdout %s rows", f"{len(train):,}", f"{len(holdout):,}")


if __name__ == "__main__":
    run_stage("split", main)
