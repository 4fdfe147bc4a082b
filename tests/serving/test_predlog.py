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
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from prometheus_client import REGISTRY
from pytest_postgresql import factories

from modelops.serving.bento import free_port
from modelops.serving.predlog import (
    FEEDBACK,
    METADATA,
    MIGRATIONS,
    PREDICTIONS,
    DuplicateLabelError,
    PredictionLog,
    UnknownPredictionError,
    make_engine,
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


def row(request_id: str, record_id: str, route: str = "champion") -> dict:
    return {
        "request_id": request_id,
        "record_id": record_id,
        "entity_id": "E1",
        "created_at": dt.datetime.now(dt.UTC),
        "model_version": "model:aaa",
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


def test_feedback_by_request_or_record_id_unknown_and_duplicate(url):
    log = PredictionLog(url, flush_interval_s=60, id_name="thing_id").start()  # label() flushes
    log.record([row("r1", "t1"), row("r1", "t1", route="shadow"), row("r2", "t2"), row("r3", "t2")])
    assert log.label(label=1, request_id="r1")["record_id"] == "t1"
    assert log.label(label=0, record_id="t2")["request_id"] == "r3", "the latest answer"
    with pytest.raises(UnknownPredictionError, match="request_id 'nope'"):
        log.label(label=1, request_id="nope")
    with pytest.raises(UnknownPredictionError, match="thing_id 'nope'"):
        log.label(label=1, record_id="nope")
    with pytest.raises(DuplicateLabelError, match="already has a label"):
        log.label(label=0, request_id="r1")
    with pytest.raises(DuplicateLabelError):
        log.label(label=1, record_id="t1")
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
    assert version == head()


def head() -> str:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return str(ScriptDirectory.from_config(config).get_current_head())


def upgrade(engine: sa.Engine, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def test_a_log_of_the_first_migration_keeps_its_rows_under_record_id(url):
    """0002 renames transaction_id (0001) to record_id, with its index."""
    engine = make_engine(url)
    upgrade(engine, "0001")
    old = {k: v for k, v in row("r1", "t1").items() if k != "record_id"} | {"transaction_id": "t1"}
    with engine.begin() as connection:
        predictions = sa.Table("predictions", sa.MetaData(), autoload_with=connection)
        feedback = sa.Table("feedback", sa.MetaData(), autoload_with=connection)
        connection.execute(predictions.insert(), [old, old | {"request_id": "r2"}])
        connection.execute(
            feedback.insert(),
            {
                "request_id": "r1",
                "transaction_id": "t1",
                "label": 1,
                "received_at": old["created_at"],
            },
        )
    engine.dispose()
    log = PredictionLog(url, flush_interval_s=60)
    log.record([row("r3", "t3")])
    assert log.flush(), "the log migrated the database and wrote to it"
    with log.engine.connect() as connection:
        stored = connection.execute(
            sa.select(PREDICTIONS.c.request_id, PREDICTIONS.c.record_id).order_by(
                PREDICTIONS.c.request_id
            )
        ).all()
        labels = connection.execute(sa.select(FEEDBACK.c.request_id, FEEDBACK.c.record_id)).all()
        indexes = {i["name"] for i in sa.inspect(connection).get_indexes("predictions")}
    assert [tuple(r) for r in stored] == [("r1", "t1"), ("r2", "t1"), ("r3", "t3")]
    assert [tuple(r) for r in labels] == [("r1", "t1")]
    assert "ix_predictions_record_id" in indexes
    assert "ix_predictions_transaction_id" not in indexes
    assert log.label(label=0, record_id="t1")["request_id"] == "r2"
    log.close()
