"""Shared fixtures: the settings of params.yaml, shrunk for speed, and small data sets
generated from its schema (``modelops.data.synthetic``), so the template tests pass for
any adopted dataset.

``MODELOPS_TEST_PARAMS=path/to/params.yaml`` runs the suite against another params file
(e.g. tests/params/churn.yaml, a made-up adoption). Tests marked ``example`` are about
the card-fraud example; they are skipped unless ``data.source`` is ``simulator``.

With ``--pipeline-outputs`` the model fixtures are the pipeline's own: the committed
settings, data/train.parquet, data/holdout.parquet and the fitted models in models/.
``make behaviour`` runs the behavioural model tests that way, as a merge gate."""

from __future__ import annotations

import inspect
import os
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from modelops import paths
from modelops.config import Settings, load_settings
from modelops.data import synthetic
from modelops.data.prepare import prepare
from modelops.data.split import split
from modelops.data.validation import validate
from modelops.io import load_model
from modelops.training.train import build_baselines, build_model, fit, load_estimator_class

REPO = Path(__file__).resolve().parents[1]
# The params file under test: the repository's, or another adoption's.
PARAMS = Path(os.environ.get("MODELOPS_TEST_PARAMS") or REPO / "params.yaml").resolve()
ROWS = 20_000  # synthetic rows: enough for credible intervals, quick to fit
SEED = 0
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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the example's tests when the params under test do not use its simulator."""
    source = load_settings(PARAMS).data.source
    if source == "simulator":
        return
    skip = pytest.mark.skip(
        reason=f"example test (card-fraud simulator): {PARAMS.name} has data.source '{source}'"
    )
    for item in items:
        if item.get_closest_marker("example"):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def pipeline_outputs(request: pytest.FixtureRequest) -> bool:
    """True with ``--pipeline-outputs``."""
    return bool(request.config.getoption("--pipeline-outputs"))


def quicker(settings: Settings, **params: Any) -> dict[str, Any]:
    """The model's params with those of ``params`` that its estimator accepts."""
    accepted = inspect.signature(load_estimator_class(settings.model.estimator)).parameters
    return {**settings.model.params, **{k: v for k, v in params.items() if k in accepted}}


def with_updates(settings: Settings, **sections: dict[str, Any]) -> Settings:
    """A copy of ``settings`` with fields of some sections replaced."""
    updates = {
        name: getattr(settings, name).model_copy(update=fields) for name, fields in sections.items()
    }
    return settings.model_copy(update=updates)


@pytest.fixture(scope="session")
def repo_settings() -> Settings:
    """The params under test as written (params.yaml, or MODELOPS_TEST_PARAMS)."""
    return load_settings(PARAMS)


@pytest.fixture(scope="session")
def settings(repo_settings: Settings, pipeline_outputs: bool) -> Settings:
    """The settings under test with a quicker model, fewer resamples, a small simulator."""
    if pipeline_outputs:
        return repo_settings
    return with_updates(
        repo_settings,
        simulator={"weeks": 8, "transactions_per_week": 8000},
        split={"holdout_weeks": 2},
        model={"params": quicker(repo_settings, max_iter=100, learning_rate=0.1)},
        evaluation={
            "bootstrap": repo_settings.evaluation.bootstrap.model_copy(update={"n_resamples": 200})
        },
    )


def _present(column: str | None, missing: str) -> str:
    if column is None:
        pytest.skip(missing)
    return column


@pytest.fixture
def id_column(settings: Settings) -> str:
    """The schema's id column (the test is skipped without one)."""
    return _present(settings.data_schema.id_column, "the schema has no id column")


@pytest.fixture
def time_column(settings: Settings) -> str:
    """The schema's time column (the test is skipped without one)."""
    reason = "the schema has no time column: the split is stratified"
    return _present(settings.data_schema.time_column, reason)


@pytest.fixture(scope="session")
def dataset(settings: Settings) -> pd.DataFrame:
    """Synthetic rows of the schema as the validate stage writes them (prepared and
    validated: target 0/1), eight weeks when there is a time column; ``behaviour.expect``
    holds in them."""
    raw = synthetic.valid(settings.data_schema, ROWS, SEED, expect=settings.behaviour.expect)
    return validate(prepare(raw, settings.data_schema), settings.data_schema)


@pytest.fixture(scope="session")
def simulated(settings: Settings) -> pd.DataFrame:
    """Example: eight weeks of the card-fraud simulator (64,000 rows). Only for tests
    marked ``example``."""
    from modelops.example.simulator import simulate_week

    weeks = range(settings.simulator.weeks)
    return pd.concat([simulate_week(settings.simulator, w) for w in weeks], ignore_index=True)


@pytest.fixture(scope="session")
def train_holdout(
    request: pytest.FixtureRequest, settings: Settings, pipeline_outputs: bool
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The split of ``dataset`` (or the pipeline's split)."""
    if pipeline_outputs:
        return pd.read_parquet(REPO / paths.TRAIN), pd.read_parquet(REPO / paths.HOLDOUT)
    dataset = request.getfixturevalue("dataset")
    return split(dataset, settings.data_schema, settings.split)


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
    small = with_updates(settings, model={"params": quicker(settings, max_iter=20)})
    challenger = fit(build_model(small.data_schema, small.model), train, small.data_schema)
    folder = tmp_path_factory.mktemp("versions")
    (folder / "a").mkdir()
    (folder / "b").mkdir()
    return (
        save_version(settings, fitted, train, holdout, folder / "a"),
        save_version(settings, challenger, train, holdout, folder / "b"),
    )
