"""Stage profile: the model version's reference profile for drift monitoring."""

import logging

import pandas as pd

from modelops import paths
from modelops.config import Settings
from modelops.io import read_json
from modelops.monitoring.profile import build_profile
from modelops.stage import run_stage


def main(settings: Settings, log: logging.Logger) -> None:
    """Bin the train rows' features and the holdout's scores and decisions."""
    schema = settings.data_schema
    timed = [schema.time_column] if schema.time_column else []
    train = pd.read_parquet(paths.TRAIN, columns=[*schema.features, *timed])
    decision = read_json(paths.LINEAGE)["decision"]
    profile = build_profile(
        train,
        pd.read_parquet(paths.HOLDOUT_SCORES, columns=["score"])["score"],
        schema,
        settings.monitoring.drift.bins,
        (decision["threshold"], decision["decline_threshold"]),
    )
    profile.save(paths.PROFILE)
    log.info(
        "profiled %d features of %s train rows and %s holdout scores",
        len(profile.features),
        f"{profile.train_rows:,}",
        f"{profile.score.rows:,}",
    )


if __name__ == "__main__":
    run_stage("profile", main)
