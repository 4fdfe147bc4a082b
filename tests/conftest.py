"""Shared fixtures: settings from the repository's params.yaml, shrunk for speed, and
small data sets built with the simulator.

With ``--pipeline-outputs`` the model fixtures are the pipeline's own: the committed
settings, data/train.parquet, data/holdout.parquet and the fitted models in models/.
``make behaviour`` runs the behavioural model tests that way, as a merge gate."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from modelops import paths
from modelops.config import Settings, load_settings
from modelops.data.split import split
from modelops.example.simulator import simulate_week
from modelops.io import load_model
from modelops.training.train import build_baselines, build_model, fit

REPO = Path(__file__).resolve().parents[1]
# Serving tests save models and bentos in a throwaway BentoML home, set before BentoML
# is first imported (it reads the variable once).
os.environ["BENTOML_HOME"] = tempfile.mkdtemp(prefix="bentoml-tests-")
os.environ["BENTOML_DO_NOT_TRACK"] = "true"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--pipeline-outputs",
        action="store_true",
        help="model tests use the pipeline's data and fitted models instead of small fixtures",
    )


@pytest.fixture(scope="session")
def pipeline_outputs(request: pytest.FixtureRequest) -> bool:
    """True with ``--pipeline-outputs``."""
    return bool(request.config.getoption("--pipeline-outputs"))


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
def settings(repo_settings: Settings, pipeline_outputs: bool) -> Settings:
    """The committed settings on a small simulated data set and a quick model."""
    if pipeline_outputs:
        return repo_settings
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
    request: pytest.FixtureRequest, settings: Settings, pipeline_outputs: bool
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The time split of ``transactions`` (or the pipeline's split)."""
    if pipeline_outputs:
        return pd.read_parquet(REPO / paths.TRAIN), pd.read_parquet(REPO / paths.HOLDOUT)
    transactions = request.getfixturevalue("transactions")
    return split(transactions, settings.data_schema, settings.split)


@pytest.fixture(scope="session")
def fitted(
    train_holdout: tuple[pd.DataFrame, pd.DataFrame], settings: Settings, pipeline_outputs: bool
) -> Any:
    """The configured model fitted on the train part."""
    if pipeline_outputs:
        return load_model(REPO / paths.MODEL)
    return fit(
        build_model(settings.data_schema, settings.model), train_holdout[0], settings.data_schema
    )


@pytest.fixture(scope="session")
def fitted_baselines(
    train_holdout: tuple[pd.DataFrame, pd.DataFrame], settings: Settings, pipeline_outputs: bool
) -> dict[str, Any]:
    """Dummy and logistic baselines fitted on the train part."""
    if pipeline_outputs:
        baselines: dict[str, Any] = load_model(REPO / paths.BASELINES)
        return baselines
    baselines = build_baselines(settings.data_schema, settings.baselines)
    for model in baselines.values():
        fit(model, train_holdout[0], settings.data_schema)
    return baselines


@pytest.fixture(scope="session")
def versions(
    settings: Settings,
    fitted: Any,
    train_holdout: tuple[pd.DataFrame, pd.DataFrame],
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[str, str]:
    """Two model versions in the test BentoML store: the fitted model (champion) and a
    smaller one (challenger)."""
    from tests.serving.support import save_version

    train, holdout = train_holdout
    small = with_updates(settings, model={"params": {**settings.model.params, "max_iter": 20}})
    challenger = fit(build_model(small.data_schema, small.model), train, small.data_schema)
    folder = tmp_path_factory.mktemp("versions")
    (folder / "a").mkdir()
    (folder / "b").mkdir()
    return (
        save_version(settings, fitted, train, holdout, folder / "a"),
        save_version(settings, challenger, train, holdout, folder / "b"),
    )
