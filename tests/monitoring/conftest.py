"""Fixtures of the monitoring tests: a reference profile built from synthetic rows of
the schema under test, and prediction logs written by the real PredictionLog (SQLite,
and PostgreSQL when its server runs: the serving tests' fixtures)."""

from __future__ import annotations

import datetime as dt
import os
import uuid

import numpy as np
import pandas as pd
import psycopg
import pytest
from pytest_postgresql import factories

from modelops.config import DriftSettings, Settings
from modelops.data import synthetic
from modelops.monitoring.profile import Profile, build_profile
from modelops.schema import Schema
from modelops.serving.predlog import PredictionLog
from tests.serving.conftest import DATABASE, PG

# The serving tests' server, with databases of our own (a fixture shared by two folders
# would create the same template database twice when both run in one session).
monitoring_postgres = factories.postgresql_noproc(**PG, dbname=f"{DATABASE}_monitoring_tests")
monitoring_database = factories.postgresql("monitoring_postgres", dbname=f"{DATABASE}_monitoring")

REFERENCE_ROWS = 40_000
WINDOW_ROWS = 20_000
T0 = dt.datetime(2026, 3, 2, tzinfo=dt.UTC)


def rows_of(schema: Schema, n: int, seed: int) -> pd.DataFrame:
    """``n`` valid rows of the schema's columns (target and all), drawn with ``seed``."""
    return synthetic.valid(schema, n, seed)


def profile_of(frame: pd.DataFrame, schema: Schema, bins: int = 20) -> Profile:
    """The profile of ``frame``'s features, with made-up scores and thresholds."""
    scores = pd.Series(np.random.default_rng(0).beta(1, 20, len(frame)))
    return build_profile(frame, scores, schema, bins, (0.1, 0.5))


@pytest.fixture(scope="session")
def schema(settings: Settings) -> Schema:
    return settings.data_schema


@pytest.fixture(scope="session")
def drift_settings(settings: Settings) -> DriftSettings:
    return settings.monitoring.drift


@pytest.fixture(scope="session")
def alpha(settings: Settings) -> float:
    """The level each drift test gets of the false-alarm budget."""
    return settings.monitoring.test_alpha


@pytest.fixture(scope="session")
def reference(schema: Schema) -> pd.DataFrame:
    return rows_of(schema, REFERENCE_ROWS, seed=1)


@pytest.fixture(scope="session")
def profile(reference: pd.DataFrame, schema: Schema) -> Profile:
    return profile_of(reference, schema)


@pytest.fixture(scope="session")
def window(schema: Schema) -> pd.DataFrame:
    """Fresh rows from the reference's population."""
    return rows_of(schema, WINDOW_ROWS, seed=2)


def as_records(frame: pd.DataFrame) -> list[dict]:
    """Rows as the service logs them: JSON values, None for missing, text timestamps."""
    frame = frame.assign(**{c: frame[c].astype(str) for c in frame.select_dtypes("datetime")})
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


def write_log(
    url: str,
    frame: pd.DataFrame | list[dict],
    *,
    start: dt.datetime = T0,
    version: str = "m:1",
    route: str = "champion",
    scores: np.ndarray | None = None,
    decisions: list[str] | None = None,
) -> None:
    """Log ``frame``'s rows or these records (one a second from ``start``) with the real
    PredictionLog."""
    records = as_records(frame) if isinstance(frame, pd.DataFrame) else frame
    scores = np.linspace(0, 1, len(frame)) if scores is None else scores
    decisions = decisions or ["approve"] * len(frame)
    rows = [
        {
            "request_id": uuid.uuid4().hex,
            "record_id": str(i),
            "entity_id": None,
            "created_at": start + dt.timedelta(seconds=i),
            "model_version": version,
            "route": route,
            "automation": "partial",
            "score": float(scores[i]),
            "decision": decisions[i],
            "latency_ms": 1.0,
            "inputs": record,
            "reasons": [],
        }
        for i, record in enumerate(records)
    ]
    log = PredictionLog(url, flush_interval_s=60, max_buffer=len(rows) + 1)
    log.record(rows)
    assert log.flush()
    log.engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def log_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """A fresh, empty prediction log's URL: a SQLite file, or a database on the local
    PostgreSQL server (skipped without one, failed under MODELOPS_REQUIRE_POSTGRES=1)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'predictions.db'}"
    try:
        psycopg.connect(dbname="postgres", connect_timeout=3, **PG).close()
    except psycopg.OperationalError as exc:
        message = f"PostgreSQL is not running at {PG['host']}:{PG['port']} (`make postgres`)"
        if os.environ.get("MODELOPS_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"{message}: {exc}")
        pytest.skip(message)
    info = request.getfixturevalue("monitoring_database").info
    return (
        f"postgresql+psycopg://{info.user}:{PG['password']}@{info.host}:{info.port}/{info.dbname}"
    )
