"""Fixtures of the PR-check tests: a working directory holding what `dvc repro` and
`make champion` leave, on the small fixture model."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelops import paths
from modelops.config import Settings
from modelops.io import dump_model, write_json, write_parquet
from modelops.review.compare import CHALLENGER, CHAMPION, Comparison, slice_summary
from modelops.training.metrics import Holdout, Scored, bootstrap
from modelops.training.train import FitCount, train_record
from tests.conftest import REPO, with_updates


@pytest.fixture
def check_settings(settings: Settings) -> Settings:
    """Fewer latency calls: the budget gate's measurement is not what these tests test."""
    budgets = settings.gates.budgets.model_copy(update={"latency_calls": 20})
    return with_updates(settings, gates={"budgets": budgets})


@pytest.fixture
def project(tmp_path, monkeypatch, fitted, fitted_baselines, train_holdout, settings) -> Path:
    """A working directory holding the outputs of `dvc repro` and of `make champion`, as
    after running them by hand (no pipeline record: what the PR job must measure too,
    behaviour and parity, is skipped when absent, not failed)."""
    monkeypatch.chdir(tmp_path)
    train, holdout = train_holdout
    dump_model(fitted, paths.MODEL)
    dump_model(fitted_baselines, paths.BASELINES)
    write_parquet(train, paths.TRAIN)
    write_parquet(holdout, paths.HOLDOUT)
    write_json({"rows": len(train) + len(holdout)}, paths.VALIDATION_REPORT)
    target = settings.data_schema.target
    count = FitCount(len(train), int(train[target].sum()))  # `fitted` was fitted on all of it
    record = train_record(train, train, count, settings.model.fit_rows, target)
    write_json(record, paths.TRAIN_RECORD)
    shutil.copy(REPO / "params.yaml", "params.yaml")
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


N = 60_000


@pytest.fixture(scope="module")
def gate_data():
    """Labels, a signal and a region per row: synthetic scores with known differences."""
    rng = np.random.default_rng(11)
    y = (rng.random(N) < 0.02).astype(float)
    signal = rng.normal(0, 1, N) + 2.0 * y
    region = np.where(rng.random(N) < 0.5, "north", "south").astype(object)
    region[rng.random(N) < 0.01] = "islands"
    holdout = Holdout(
        y=y, missed_cost=rng.uniform(5, 500, N), false_alarm_cost=np.zeros(N), action_cost=5.0
    )
    return holdout, signal, region


def scored(signal: np.ndarray, noise: np.ndarray | float, seed: int, shift: float = 4) -> Scored:
    s = signal + np.random.default_rng(seed).normal(0, 1, signal.size) * noise
    return Scored.at_review_rate(1 / (1 + np.exp(-(s - shift))), 0.02)


def comparison(gate_data, challenger: Scored, champion: Scored | None = None) -> Comparison:
    """A Comparison as `compare` builds it, from synthetic scores (slices by region)."""
    holdout, _, region = gate_data
    models = {CHALLENGER: challenger} | ({CHAMPION: champion} if champion else {})
    groups = {f"region={r}": region == r for r in ("islands", "north", "south")}
    result = bootstrap(holdout, models, n_resamples=300, confidence=0.95, seed=0, slices=groups)
    slices, draws = slice_summary(result, groups, holdout, "roc_auc")
    summary = {
        "holdout": {"rows": N, "confidence": 0.95, "review_rate": 0.02, "decline_rate": 0.002},
        "metrics": {
            m: {k: result.estimate(m, k).as_dict() for k in ("roc_auc", "brier")} for m in models
        },
        "slices": slices,
        "budgets": {CHALLENGER: {"latency_ms_p50": 12.0, "size_mb": 3.0}},
    }
    return Comparison(result, models, holdout.y, summary, draws)
