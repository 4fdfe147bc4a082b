"""The prediction log on SQLite and on a real PostgreSQL server: buffered writes,
feedback labels (404/409), outages (keep serving, count, retry) and migrations.

PostgreSQL: `make postgres` starts Debian's server (.ci/run does); pytest-postgresql
creates and drops a database per test. Without a server these tests skip with that
reason, except under MODELOPS_REQUIRE_POSTGRES=1 (CI), where they fail.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil

import psycopg
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from prometheus_client import REGISTRY
from pytest_postgresql import factories

from modelops.serving.bento import free_port
from modelops.serving.predlog import (
    FEEDBACK,
    METADATA,
    PREDICTIONS,
    DuplicateLabelError,
    PredictionLog,
    UnknownPredictionError,
)

PG = {"host": "127.0.0.1", "port": 5432, "user": "modelops", "password": "modelops"}
postgresql_server = factories.postgresql_noproc(**PG)
postgresql_database = factories.postgresql("postgresql_server", dbname="modelops_test")


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'log' / 'predictions.db'}"
    try:
        psycopg.connect(dbname="postgres", connect_timeout=3, **PG).close()
    except psycopg.OperationalError as exc:
        message = f"PostgreSQL is not running at {PG['host']}:{PG['port']} (`make postgres`): {exc}"
        if os.environ.get("MODELOPS_REQUIRE_POSTGRES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    info = request.getfixturevalue("postgresql_database").info
    return (
        f"postgresql+psycopg://{info.user}:{PG['password']}@{info.host}:{info.port}/{info.dbname}"
    )


def row(request_id: str, transaction_id: str, route: str = "champion") -> dict:
    return {
        "request_id": request_id,
        "transaction_id": transaction_id,
        "entity_id": "C1",
        "created_at": dt.datetime.now(dt.UTC),
        "model_version": "card-fraud:aaa",
        "route": route,
        "automation": "partial",
        "score": 0.5,
        "decision": "review",
        "latency_ms": 4.2,
        "inputs": {"amount": 10.0, "channel": "pos"},
        "reasons": [],
    }


def count(url: str, table: sa.Table = PREDICTIONS) -> int:
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        n = connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
    engine.dispose()
    return int(n)


def metric(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


def test_records_are_written_in_the_background_and_close_writes_the_rest(url):
    log = PredictionLog(url, flush_interval_s=0.05).start()
    log.record([row(f"r{i}", f"t{i}") for i in range(500)])
    log.record([row("r0", "t0", route="shadow")])
    assert log.close()
    assert count(url) == 501
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        stored = connection.execute(
            sa.select(PREDICTIONS).where(PREDICTIONS.c.request_id == "r7")
        ).one()
    engine.dispose()
    assert stored.inputs == {"amount": 10.0, "channel": "pos"}
    assert stored.score == 0.5


def test_feedback_by_request_or_transaction_id_unknown_and_duplicate(url):
    log = PredictionLog(url, flush_interval_s=60).start()  # label() writes what is buffered
    log.record([row("r1", "t1"), row("r1", "t1", route="shadow"), row("r2", "t2"), row("r3", "t2")])
    assert log.label(label=1, request_id="r1")["transaction_id"] == "t1"
    assert log.label(label=0, transaction_id="t2")["request_id"] == "r3", "the latest answer"
    with pytest.raises(UnknownPredictionError, match="request_id 'nope'"):
        log.label(label=1, request_id="nope")
    with pytest.raises(UnknownPredictionError, match="transaction_id 'nope'"):
        log.label(label=1, transaction_id="nope")
    with pytest.raises(DuplicateLabelError, match="already has a label"):
        log.label(label=0, request_id="r1")
    with pytest.raises(DuplicateLabelError):
        log.label(label=1, transaction_id="t1")
    log.close()
    assert count(url, FEEDBACK) == 2


def test_an_unreachable_database_never_fails_recording_and_is_counted():
    url = f"postgresql+psycopg://nobody:x@127.0.0.1:{free_port()}/none?connect_timeout=2"
    failures, dropped = (
        metric("modelops_prediction_log_write_failures_total"),
        metric("modelops_prediction_log_dropped_total"),
    )
    log = PredictionLog(url, flush_interval_s=60, max_buffer=100)
    log.record([row(f"r{i}", "t") for i in range(80)])
    assert not log.flush()
    assert log.pending == 80, "nothing is lost while the buffer has room"
    log.record([row(f"s{i}", "t") for i in range(50)])
    assert log.pending == 100
    assert metric("modelops_prediction_log_write_failures_total") == failures + 1
    assert metric("modelops_prediction_log_dropped_total") == dropped + 30
    assert metric("modelops_prediction_log_pending") == 100


def test_records_buffered_during_an_outage_are_written_when_it_ends(tmp_path):
    database = tmp_path / "predictions.db"
    database.mkdir()  # a directory where the file should be: SQLite cannot open it
    url = f"sqlite:///{database}"
    log = PredictionLog(url, flush_interval_s=60)
    log.record([row(f"r{i}", f"t{i}") for i in range(10)])
    assert not log.flush()
    assert log.pending == 10
    shutil.rmtree(database)
    assert log.flush()
    assert log.pending == 0
    assert count(url) == 10


def test_the_migrations_build_exactly_the_tables_the_code_uses(url):
    log = PredictionLog(url)
    log.record([row("r1", "t1")])
    assert log.flush()
    with log.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), METADATA)
        version = connection.execute(
            sa.text("select version_num from alembic_version")
        ).scalar_one()
    log.close()
    assert diff == []
    assert version == "0001"
