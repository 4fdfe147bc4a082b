"""Stage baselines: fit a prior-only dummy and a logistic regression on the train part."""

import logging

import pandas as pd

from modelops import paths
from modelops.config import Settings
from modelops.io import dump_model
from modelops.stage import run_stage
from modelops.training.train import build_baselines, fit


def main(settings: Settings, log: logging.Logger) -> None:
    """Fit the baselines the model must beat."""
    schema = settings.data_schema
    train = pd.read_parquet(paths.TRAIN)
    baselines = build_baselines(schema, settings.baselines)
    for name, model in baselines.items():
        log.info("fitting %s baseline on %s rows", name, f"{len(train):,}")
        fit(model, train, schema)
    dump_model(baselines, paths.BASELINES)


if __name__ == "__main__":
    run_stage("baselines", main)
