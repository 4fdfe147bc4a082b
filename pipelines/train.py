"""Stage train: fit the model Pipeline (preprocessing + estimator) on the train part."""

import logging

import pandas as pd

from modelops import paths
from modelops.config import Settings
from modelops.io import dump_model
from modelops.stage import run_stage
from modelops.training.train import build_model, fit


def main(settings: Settings, log: logging.Logger) -> None:
    """Fit the configured estimator."""
    schema = settings.data_schema
    train = pd.read_parquet(paths.TRAIN)
    model = build_model(schema, settings.model)
    log.info(
        "fitting %s on %s rows x %d features",
        settings.model.estimator.rsplit(".", 1)[-1],
        f"{len(train):,}",
        len(schema.features),
    )
    dump_model(fit(model, train, schema), paths.MODEL)


if __name__ == "__main__":
    run_stage("train", main)
