"""Stage evaluate: metrics with intervals, baselines, slices, plots, lineage, model card."""

import logging

import pandas as pd
from tqdm import tqdm

from modelops import paths
from modelops.config import Settings
from modelops.io import load_model, read_json, write_csv, write_json, write_parquet, write_text
from modelops.stage import run_stage
from modelops.training.evaluate import evaluate
from modelops.training.lineage import (
    build_record,
    describe_part,
    lineage_columns,
    model_card,
    raw_data_hash,
)


def main(settings: Settings, log: logging.Logger) -> None:
    """Evaluate the model and its baselines on the holdout."""
    schema = settings.data_schema
    holdout = pd.read_parquet(paths.HOLDOUT)
    boot = settings.evaluation.bootstrap
    log.info(
        "scoring %s holdout rows; %d bootstrap resamples", f"{len(holdout):,}", boot.n_resamples
    )
    with tqdm(
        total=boot.n_resamples, desc="[evaluate] bootstrap", unit="resample", disable=None
    ) as bar:
        result = evaluate(
            load_model(paths.MODEL),
            load_model(paths.BASELINES),
            holdout,
            schema,
            settings.evaluation,
            progress=bar.update,
            words=settings.words,
        )
    write_json(result.metrics, paths.METRICS)
    write_json(result.baselines, paths.BASELINE_METRICS)
    write_json(result.slices, paths.SLICES)
    for name, table in result.plots.items():
        write_csv(table, paths.PLOTS / f"{name}.csv")
    write_parquet(result.holdout_scores, paths.HOLDOUT_SCORES)

    parts = {
        # lineage needs only the label and time of the train rows
        "train": describe_part(
            pd.read_parquet(paths.TRAIN, columns=lineage_columns(schema)), paths.TRAIN, schema
        ),
        "holdout": describe_part(holdout, paths.HOLDOUT, schema),
    }
    # the rows that reached the estimator's fit, as the train stage recorded them
    parts["train"]["fitted_rows"] = read_json(paths.TRAIN_RECORD)["fitted_rows"]
    record = build_record(
        settings=settings,
        model_path=paths.MODEL,
        parts=parts,
        metrics=result.metrics,
        baselines=result.baselines,
        raw_hash=raw_data_hash(paths.DVC_LOCK, settings.data.path),
    )
    write_json(record, paths.LINEAGE)
    card = model_card(record, result.slices, boot.confidence, settings.model_card, settings.words)
    write_text(card, paths.MODEL_CARD)
    auc = result.metrics["roc_auc"]
    log.info(
        "%s: ROC-AUC %.4f [%.4f, %.4f]",
        record["model_id"],
        auc["value"],
        auc["ci_low"],
        auc["ci_high"],
    )


if __name__ == "__main__":
    run_stage("evaluate", main)
