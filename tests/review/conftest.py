"""Fixtures of the PR-check tests: a working directory holding what `dvc repro` and
`make champion` leave, on the small fixture model."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from modelops import paths
from modelops.config import Settings
from modelops.io import dump_model, write_json, write_parquet
from modelops.review.repro import parse
from tests.conftest import REPO, with_updates


@pytest.fixture
def check_settings(settings: Settings) -> Settings:
    """Fewer latency calls: the budget gate's measurement is not what these tests test."""
    budgets = settings.gates.budgets.model_copy(update={"latency_calls": 20})
    return with_updates(settings, gates={"budgets": budgets})


@pytest.fixture
def project(tmp_path, monkeypatch, fitted, fitted_baselines, train_holdout) -> Path:
    """A working directory holding the outputs of `dvc repro` and of `make champion`."""
    monkeypatch.chdir(tmp_path)
    dump_model(fitted, paths.MODEL)
    dump_model(fitted_baselines, paths.BASELINES)
    write_parquet(train_holdout[1], paths.HOLDOUT)
    shutil.copy(REPO / "params.yaml", "params.yaml")
    write_json(parse("Running stage 'train':\n", 0), paths.PIPELINE_RUN)
    return Path(tmp_path)


@pytest.fixture
def add_champion(project) -> Callable[..., None]:
    """Put a model where `make champion` leaves the base branch's model."""

    def add(model: Any, status: str = "fetched") -> None:
        (paths.CHAMPION / "base").mkdir(parents=True, exist_ok=True)
        dump_model(model, paths.CHAMPION / "model.joblib")
        shutil.copy("params.yaml", paths.CHAMPION / "base/params.yaml")
        write_json({"status": status, "base": "main", "commit": "a" * 40, "reason": "test"},
                   paths.CHAMPION / "source.json")  # fmt: skip

    return add
