"""Stage baselines: fit a prior-only dummy and a logistic regression on the same train
rows as the model (``model.fit_rows``), so the lift over them is the estimator's."""

import logging

import pandas as pd

from modelops import paths
from modelops.config import Settings
from modelops.io import dump_model
from modelops.stage import run_stage
from modelops.training.train import build_baselines, counting_fit, fit, select_fit_rows


def main(settings: Settings, log: logging.Logger) -> None:
    """Fit the baselines the model must beat."""
    schema = settings.data_schema
    train = pd.read_parquet(paths.TRAIN)
    rows = select_fit_rows(train, settings.model.fit_rows, schema.target)
    baselines = build_baselines(schema, settings.baselines)
    for name, model in baselines.items():
        with counting_fit(model) as fitted:
            fit(model, rows, schema)
        log.info(
            "fitted %s baseline on %s of %s train rows",
            name,
            f"{fitted.rows or 0:,}",
            f"{len(train):,}",
        )
    dump_model(baselines, paths.BASELINES)


if __name__ == "__main__":
    run_stage("baselines", main)
