"""Shared fixtures: settings from the repository's params.yaml, shrunk for speed, and
small data sets built with the simulator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from modelops.config import Settings, load_settings
from modelops.data.simulator import simulate_week
from modelops.data.split import split
from modelops.train import build_baselines, build_model, fit

REPO = Path(__file__).resolve().parents[1]


def with_updates(settings: Settings, **sections: dict[str, Any]) -> Settings:
    """A copy of ``settings`` with fields of some sections replaced."""
    updates = {
        name: getattr(settings, name).model_copy(update=fields) for name, fields in sections.items()
    }
    return settings.model_copy(update=updates)


@pytest.fixture(scope="session")
def repo_settings() -> Settings:
    """params.yaml as committed."""
    return load_settings(REPO / "params.yaml")


@pytest.fixture(scope="session")
def settings(repo_settings: Settings) -> Settings:
    """The committed settings on a small simulated data set and a quick model."""
    return with_updates(
        repo_settings,
        simulator={"weeks": 8, "transactions_per_week": 8000},
        split={"holdout_weeks": 2},
        model={"params": {**repo_settings.model.params, "max_iter": 100, "learning_rate": 0.1}},
        evaluation={
            "bootstrap": repo_settings.evaluation.bootstrap.model_copy(update={"n_resamples": 200})
        },
    )


@pytest.fixture(scope="session")
def transactions(settings: Settings) -> pd.DataFrame:
    """Eight simulated weeks (64,000 rows)."""
    weeks = range(settings.simulator.weeks)
    return pd.concat([simulate_week(settings.simulator, w) for w in weeks], ignore_index=True)


@pytest.fixture(scope="session")
def train_holdout(
    transactions: pd.DataFrame, settings: Settings
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The time split of ``transactions``."""
    return split(transactions, settings.data_schema, settings.split)


@pytest.fixture(scope="session")
def fitted(train_holdout: tuple[pd.DataFrame, pd.DataFrame], settings: Settings) -> Any:
    """The configured model fitted on the train part."""
    return fit(
        build_model(settings.data_schema, settings.model), train_holdout[0], settings.data_schema
    )


@pytest.fixture(scope="session")
def fitted_baselines(
    train_holdout: tuple[pd.DataFrame, pd.DataFrame], settings: Settings
) -> dict[str, Any]:
    """Dummy and logistic baselines fitted on the train part."""
    baselines = build_baselines(settings.data_schema, settings.baselines)
    for model in baselines.values():
        fit(model, train_holdout[0], settings.data_schema)
    return baselines
