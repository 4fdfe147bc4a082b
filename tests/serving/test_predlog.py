"""The prediction log on SQLite and on a real PostgreSQL server: buffered writes,
feedback labels (404/409), outages (keep serving, count, retry), migrations, retention
(pruning in batches) and pseudonymised entity ids.

PostgreSQL: `make postgres` starts Debian's server (.ci/run does); pytest-postgresql
creates and drops a database per test. Without a server these tests skip with that
reason, except under MODELOPS_REQUIRE_POSTGRES=1 (CI), where they fail.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import shutil
import threading
import time
from contextlib import contextmanager

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from prometheus_client import REGISTRY

from modelops.config import PredictionLogSettings
from modelops.errors import InputError
from modelops.serving.bento import free_port
from modelops.serving.predlog import (
    FEEDBACK,
    KEY_VARIABLE,
    METADATA,
    MIGRATIONS,
    PREDICTIONS,
    DuplicateLabelError,
    PredictionLog,
    Pseudonymizer,
    PseudonymKeyError,
    UnknownPredictionError,
    log_url,
    make_engine,
    migrate,
    prune,
    redacted,
)


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'log' / 'predictions.db'}"
    return str(request.getfixturevalue("postgres_url"))


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


# Retention: `prune` deletes what is older than retention_days, in batches.

NOW = dt.datetime(2025, 6, 1, 12, tzinfo=dt.UTC)
DAYS = 30
CUTOFF = NOW - dt.timedelta(days=DAYS)


def at(request_id: str, created_at: dt.datetime, route: str = "champion") -> dict:
    return row(request_id, f"t-{request_id}", route) | {"created_at": created_at}


def label(request_id: str, received_at: dt.datetime) -> dict:
    return {"request_id": request_id, "record_id": f"t-{request_id}", "label": 1,
            "received_at": received_at}  # fmt: skip


def fill(url: str, predictions: list[dict], feedback: list[dict]) -> None:
    engine = make_engine(url)
    migrate(engine)
    with engine.begin() as connection:
        connection.execute(PREDICTIONS.insert(), predictions)
        if feedback:
            connection.execute(FEEDBACK.insert(), feedback)
    engine.dispose()


def stored(url: str) -> tuple[list[tuple[str, str]], list[str]]:
    """(request id, route) of every prediction and the request id of every label."""
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        predictions = connection.execute(
            sa.select(PREDICTIONS.c.request_id, PREDICTIONS.c.route).order_by(PREDICTIONS.c.id)
        ).all()
        labels = connection.execute(sa.select(FEEDBACK.c.request_id).order_by(FEEDBACK.c.id))
        labelled = list(labels.scalars())
    engine.dispose()
    return [tuple(p) for p in predictions], labelled


def old_and_new(url: str) -> None:
    """Old and recent predictions, interleaved by id, and labels of each kind."""
    old, recent = CUTOFF - dt.timedelta(seconds=1), CUTOFF + dt.timedelta(days=1)
    fill(
        url,
        [
            at("old-1", CUTOFF - dt.timedelta(days=200)),
            at("new-1", recent),
            at("old-2", old),  # a second before the cutoff: goes
            at("old-2", old, route="shadow"),
            at("edge", CUTOFF),  # exactly at the cutoff: stays
            at("old-3", old),
            at("new-2", NOW),
        ],
        [
            label("old-1", old),  # old label of an old prediction
            label("new-1", recent),  # recent label of a recent prediction: stays
            label("old-2", recent),  # a late label of an old prediction: goes with it
            label("gone", recent),  # its prediction was deleted before: goes
            label("edge", CUTOFF),  # at the cutoff: stays
        ],
    )


KEPT = (
    [("new-1", "champion"), ("edge", "champion"), ("new-2", "champion")],
    ["new-1", "edge"],
)


def test_prune_deletes_exactly_the_old_predictions_and_their_labels(url):
    old_and_new(url)
    pruned = prune(url, DAYS, now=NOW)
    assert (pruned.predictions, pruned.feedback, pruned.orphaned_feedback) == (4, 1, 2)
    assert pruned.cutoff == CUTOFF
    assert not pruned.dry_run
    assert pruned.found
    assert stored(url) == KEPT
    again = prune(url, DAYS, now=NOW)
    assert (again.predictions, again.feedback, again.orphaned_feedback) == (0, 0, 0)


def test_prune_dry_run_counts_the_same_and_deletes_nothing(url):
    old_and_new(url)
    before = stored(url)
    pruned = prune(url, DAYS, now=NOW, dry_run=True)
    assert (pruned.predictions, pruned.feedback, pruned.orphaned_feedback) == (4, 1, 2)
    assert pruned.dry_run
    assert stored(url) == before
    assert len(before[0]) == 7


@contextmanager
def deletes_seen() -> list[tuple[str, int]]:
    """(table, rows) of every DELETE any engine runs inside the block."""
    seen: list[tuple[str, int]] = []

    def after(conn, cursor, statement, parameters, context, executemany) -> None:
        if statement.lstrip().upper().startswith("DELETE"):
            seen.append((statement.split()[2], cursor.rowcount))

    sa.event.listen(sa.Engine, "after_cursor_execute", after)
    try:
        yield seen
    finally:
        sa.event.remove(sa.Engine, "after_cursor_execute", after)


def test_prune_deletes_in_bounded_batches_and_keeps_the_rest(url):
    old, recent = CUTOFF - dt.timedelta(days=3), NOW - dt.timedelta(hours=1)
    predictions = [at(f"r{i}", old if i % 3 else recent) for i in range(36)]  # 24 old
    feedback = [label(f"r{i}", old if i % 3 else recent) for i in range(0, 36, 2)]  # 12 old
    fill(url, predictions, feedback)
    with deletes_seen() as seen:
        pruned = prune(url, DAYS, now=NOW, batch_rows=5)
    assert (pruned.predictions, pruned.feedback, pruned.orphaned_feedback) == (24, 12, 0)
    assert [n for table, n in seen if table == "predictions"] == [5, 5, 5, 5, 4]
    assert [n for table, n in seen if table == "feedback"] == [5, 5, 2]
    kept_predictions, kept_labels = stored(url)
    assert [r for r, _ in kept_predictions] == [f"r{i}" for i in range(0, 36, 3)]
    assert kept_labels == [f"r{i}" for i in range(0, 36, 6)]


def test_prune_of_a_missing_log_deletes_nothing_and_creates_nothing(tmp_path):
    database = tmp_path / "none" / "predictions.db"
    pruned = prune(f"sqlite:///{database}", DAYS)
    assert not pruned.found
    assert pruned.predictions == pruned.feedback == pruned.orphaned_feedback == 0
    assert not database.parent.exists()


def test_retention_days_is_positive_or_null():
    assert PredictionLogSettings().retention_days is None, "kept forever unless set"
    assert PredictionLogSettings(retention_days=1).retention_days == 1
    for bad in (0, -5, True, 1.5):
        with pytest.raises(ValueError, match="retention_days"):
            PredictionLogSettings(retention_days=bad)
    with pytest.raises(InputError):
        prune("sqlite://", 0)


def test_the_log_url_comes_from_the_environment_when_set():
    settings = PredictionLogSettings(url="sqlite:///from/params.db")
    assert log_url(settings, {}) == "sqlite:///from/params.db"
    assert log_url(settings, {"MODELOPS_LOG_URL": ""}) == "sqlite:///from/params.db"
    assert log_url(settings, {"MODELOPS_LOG_URL": "sqlite:///env.db"}) == "sqlite:///env.db"
    shown = redacted("postgresql+psycopg://user:s3cret@db:5432/predictions")
    assert "s3cret" not in shown
    assert shown == "postgresql+psycopg://user:***@db:5432/predictions"


# Pseudonymised entity ids: HMAC-SHA256 keyed by MODELOPS_PSEUDONYM_KEY, at write time.

KEY = "k" * 16 + "-a-test-key"
ON = PredictionLogSettings(pseudonymize_entity=True)


def pseudonym(value: str, key: str = KEY) -> str:
    return hmac.new(key.encode(), value.encode(), hashlib.sha256).hexdigest()


def with_entity(request_id: str, entity: str, inputs: dict, route: str = "champion") -> dict:
    return row(request_id, f"t-{request_id}", route) | {"entity_id": entity, "inputs": inputs}


def stored_rows(url: str) -> list[dict]:
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        rows = connection.execute(sa.select(PREDICTIONS).order_by(PREDICTIONS.c.id)).mappings()
        found = [dict(r) for r in rows]
    engine.dispose()
    return found


def test_pseudonymised_entity_ids_are_the_hmac_of_the_clear_value(url):
    log = PredictionLog.from_settings(ON, url=url, entity_field="card", environ={KEY_VARIABLE: KEY})
    first = {"card": "CARD-0042", "amount": 10.0}
    recorded = [
        with_entity("r1", "CARD-0042", first),
        with_entity("r1", "CARD-0042", first, route="shadow"),  # the same inputs dict
        with_entity("r2", "CARD-0042", {"card": "CARD-0042", "amount": 3.0}),
        with_entity("r3", "CARD-0777", {"card": "CARD-0777", "amount": 5.0}),
    ]
    log.record(recorded)
    assert log.flush()
    log.close()
    rows = stored_rows(url)
    assert [r["entity_id"] for r in rows] == [pseudonym("CARD-0042")] * 3 + [pseudonym("CARD-0777")]
    for r in rows:
        assert r["inputs"]["card"] == r["entity_id"], "the inputs carry the same pseudonym"
        assert len(r["entity_id"]) == 64
        assert "CARD-0" not in json.dumps(r, default=str), "no clear entity id anywhere"
    assert [r["record_id"] for r in rows] == ["t-r1", "t-r1", "t-r2", "t-r3"], "ids stay clear"
    assert rows[0]["inputs"] == {"card": pseudonym("CARD-0042"), "amount": 10.0}
    assert first == {"card": "CARD-0042", "amount": 10.0}, "the request's record is untouched"


def test_pseudonyms_depend_on_the_key():
    one = Pseudonymizer(KEY.encode(), "card")
    assert one.pseudonym("CARD-1") == Pseudonymizer(KEY.encode(), "card").pseudonym("CARD-1")
    assert one.pseudonym("CARD-1") != Pseudonymizer(b"another key, 16+ bytes", "card").pseudonym(
        "CARD-1"
    )
    assert one.pseudonym("CARD-1") != one.pseudonym("CARD-2")
    no_entity = row("r1", "t1") | {"entity_id": None, "inputs": {"card": None, "amount": 1.0}}
    assert one(no_entity) == no_entity, "a missing entity stays missing"


@pytest.mark.parametrize("environ", [{}, {KEY_VARIABLE: ""}, {KEY_VARIABLE: "fifteen-bytes!!"}])
def test_pseudonymisation_without_a_long_enough_key_fails_naming_the_variable(environ, tmp_path):
    url = f"sqlite:///{tmp_path / 'log.db'}"
    with pytest.raises(PseudonymKeyError, match=KEY_VARIABLE) as raised:
        PredictionLog.from_settings(ON, url=url, entity_field="card", environ=environ)
    assert isinstance(raised.value, InputError)
    assert "16 bytes" in str(raised.value)
    plain = PredictionLog.from_settings(PredictionLogSettings(), url=url, environ=environ)
    assert plain.pseudonymizer is None, "off by default: no key needed"


def test_pseudonymisation_reads_the_key_from_the_process_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(KEY_VARIABLE, KEY)
    monkeypatch.setenv("MODELOPS_LOG_URL", f"sqlite:///{tmp_path / 'env.db'}")
    log = PredictionLog.from_settings(ON, entity_field="card", id_name="thing_id")
    assert log.url == f"sqlite:///{tmp_path / 'env.db'}"
    assert log.id_name == "thing_id"
    assert log.pseudonymizer is not None
    assert log.pseudonymizer.pseudonym("x") == pseudonym("x")
    monkeypatch.delenv(KEY_VARIABLE)
    with pytest.raises(PseudonymKeyError, match=f"{KEY_VARIABLE} is not set"):
        PredictionLog.from_settings(ON, entity_field="card")


class ThreadRecording(Pseudonymizer):
    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.threads: set[str] = set()

    def __call__(self, row: dict) -> dict:
        self.threads.add(threading.current_thread().name)
        return super().__call__(row)


def test_pseudonyms_are_computed_by_the_background_writer_not_on_record(tmp_path):
    url = f"sqlite:///{tmp_path / 'log.db'}"
    pseudonymizer = ThreadRecording(KEY.encode(), "card")
    log = PredictionLog(url, flush_interval_s=0.05, pseudonymizer=pseudonymizer)
    log.record([with_entity("r1", "CARD-1", {"card": "CARD-1"})])
    assert pseudonymizer.threads == set(), "record() only buffers"
    log.start()
    deadline = time.monotonic() + 10
    while log.pending and time.monotonic() < deadline:
        time.sleep(0.02)
    assert log.pending == 0
    log.close()
    assert pseudonymizer.threads == {"prediction-log"}
    assert stored_rows(url)[0]["entity_id"] == pseudonym("CARD-1")


def test_records_kept_through_an_outage_are_pseudonymised_once(tmp_path):
    database = tmp_path / "predictions.db"
    database.mkdir()  # SQLite cannot open it: the write fails and the rows stay buffered
    url = f"sqlite:///{database}"
    log = PredictionLog(url, flush_interval_s=60, pseudonymizer=Pseudonymizer(KEY.encode(), "card"))
    log.record([with_entity("r1", "CARD-1", {"card": "CARD-1"})])
    assert not log.flush()
    assert not log.flush()
    shutil.rmtree(database)
    assert log.flush()
    log.close()
    (stored_row,) = stored_rows(url)
    assert stored_row["entity_id"] == pseudonym("CARD-1")
    assert stored_row["inputs"] == {"card": pseudonym("CARD-1")}
