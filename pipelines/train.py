"""Stage train: fit the model Pipeline (preprocessing + estimator) on the train rows
``model.fit_rows`` selects; record the rows that reached the estimator."""

import logging

import pandas as pd

from modelops import paths
from modelops.config import Settings
from modelops.io import dump_model, write_json
from modelops.stage import run_stage
from modelops.training.train import build_model, counting_fit, fit, select_fit_rows, train_record


def main(settings: Settings, log: logging.Logger) -> None:
    """Fit the configured estimator."""
    schema = settings.data_schema
    train = pd.read_parquet(paths.TRAIN)
    rows = select_fit_rows(train, settings.model.fit_rows, schema.target)
    model = build_model(schema, settings.model)
    with counting_fit(model) as fitted:
        fit(model, rows, schema)
    if fitted.rows is None:
        raise RuntimeError("the estimator's fit was not called: nothing was fitted")
    log.info(
        "fitted %s on %s of %s train rows (%s %s) x %d features",
        settings.model.estimator.rsplit(".", 1)[-1],
        f"{fitted.rows:,}",
        f"{len(train):,}",
        f"{fitted.positives or 0:,}",
        settings.words.positive,
        len(schema.features),
    )
    if fitted.rows != len(rows):
        log.warning(
            "model.fit_rows selected %s rows but %s reached the estimator: the code in "
            "between changed them",
            f"{len(rows):,}",
            f"{fitted.rows:,}",
        )
    dump_model(model, paths.MODEL)
    record = train_record(train, rows, fitted, settings.model.fit_rows, schema.target)
    write_json(record, paths.TRAIN_RECORD)


if __name__ == "__main__":
    run_stage("train", main)
