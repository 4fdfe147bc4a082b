"""The prediction log: every served and shadow prediction, and delayed feedback labels.

Stored through SQLAlchemy (SQLite file by default, PostgreSQL by URL); the schema is
created and migrated by Alembic (migrations/). Requests only append to an in-memory
buffer; a background thread writes it in batches. If the database is down, records
stay buffered (up to ``max_buffer``; older ones are dropped and counted) and the
failures show in /metrics; `close()` writes whatever is buffered.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections import deque
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from modelops.errors import InputError
from modelops.serving import telemetry

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
METADATA = sa.MetaData()
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

PREDICTIONS = sa.Table(
    "predictions",
    METADATA,
    sa.Column("id", _ID, primary_key=True),
    sa.Column("request_id", sa.String(64), nullable=False),
    sa.Column("record_id", sa.String(128), nullable=False, index=True),
    sa.Column("entity_id", sa.String(128)),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("model_version", sa.String(128), nullable=False),
    sa.Column("route", sa.String(16), nullable=False),
    sa.Column("automation", sa.String(16), nullable=False),
    sa.Column("score", sa.Float(), nullable=False),
    sa.Column("decision", sa.String(16), nullable=False),
    sa.Column("latency_ms", sa.Float(), nullable=False),
    sa.Column("inputs", sa.JSON(), nullable=False),
    sa.Column("reasons", sa.JSON(), nullable=False),
    sa.UniqueConstraint("request_id", "route", name="uq_predictions_request_route"),
)
FEEDBACK = sa.Table(
    "feedback",
    METADATA,
    sa.Column("id", _ID, primary_key=True),
    sa.Column("request_id", sa.String(64), nullable=False, unique=True),
    sa.Column("record_id", sa.String(128), nullable=False),
    sa.Column("label", sa.Integer(), nullable=False),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
)


class UnknownPredictionError(InputError):
    """Feedback for a request or record id the log has never answered."""


class DuplicateLabelError(InputError):
    """A second label for a prediction that already has one."""


def make_engine(url: str) -> sa.Engine:
    """An engine for the log; a SQLite file gets its folder, WAL and a busy timeout."""
    if not url.startswith("sqlite"):
        return sa.create_engine(url, pool_pre_ping=True)
    database = sa.make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, connect_args={"timeout": 30})

    @sa.event.listens_for(engine, "connect")
    def _wal(connection: Any, _: Any) -> None:
        connection.execute("PRAGMA journal_mode=WAL")

    return engine


def migrate(engine: sa.Engine) -> None:
    """Create or upgrade the log's tables to the newest migration."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


class PredictionLog:
    """Buffered, background-written prediction log."""

    def __init__(
        self,
        url: str,
        flush_interval_s: float = 0.2,
        max_buffer: int = 100_000,
        id_name: str = "record_id",
    ):
        self.url = url
        self.id_name = id_name  # what error messages call the record id (the API's name)
        self.engine = make_engine(url)
        self.flush_interval_s = flush_interval_s
        self.max_buffer = max_buffer
        self._pending: deque[dict[str, Any]] = deque()
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._stop = threading.Event()
        self._migrated = False
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)

    def start(self) -> PredictionLog:
        """Start the background writer."""
        self._thread.start()
        return self

    def record(self, rows: list[dict[str, Any]]) -> None:
        """Queue rows for writing; never blocks on the database."""
        with self._lock:
            self._pending.extend(rows)
            self._drop_overflow()

    def _drop_overflow(self) -> None:
        overflow = len(self._pending) - self.max_buffer
        for _ in range(max(overflow, 0)):
            self._pending.popleft()
        if overflow > 0:
            telemetry.LOG_DROPPED.inc(overflow)
        telemetry.LOG_PENDING.set(len(self._pending))

    @property
    def pending(self) -> int:
        """Records buffered but not yet written."""
        return len(self._pending)

    def _run(self) -> None:
        with self._flush_lock:  # tables first, so readers find them before the first write
            try:
                self._migrate()
            except (SQLAlchemyError, OSError) as exc:
                log.warning("prediction log: cannot create tables yet: %s", exc)
        while not self._stop.wait(self.flush_interval_s):
            self.flush()

    def _migrate(self) -> None:
        """Create or upgrade the tables once (callers hold the flush lock)."""
        if not self._migrated:
            migrate(self.engine)
            self._migrated = True

    def flush(self) -> bool:
        """Write everything buffered; on failure keep it buffered and return False."""
        with self._flush_lock:
            with self._lock:
                batch = list(self._pending)
                self._pending.clear()
            if not batch:
                return True
            try:
                self._migrate()
                with self.engine.begin() as connection:
                    connection.execute(PREDICTIONS.insert(), batch)
            except (SQLAlchemyError, OSError) as exc:
                telemetry.LOG_WRITE_FAILURES.inc()
                log.warning("prediction log: %d records not written yet: %s", len(batch), exc)
                with self._lock:
                    self._pending.extendleft(reversed(batch))
                    self._drop_overflow()
                return False
            telemetry.LOG_WRITTEN.inc(len(batch))
            telemetry.LOG_PENDING.set(len(self._pending))
            return True

    def close(self, timeout_s: float = 10.0) -> bool:
        """Stop the writer and write what is buffered (retrying until ``timeout_s``)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        deadline = threading.Event()
        timer = threading.Timer(timeout_s, deadline.set)
        timer.start()
        try:
            while not self.flush():
                if deadline.wait(min(self.flush_interval_s, 0.5)):
                    log.error("prediction log: %d records lost at shutdown", self.pending)
                    return False
        finally:
            timer.cancel()
            self.engine.dispose()
        return True

    def label(
        self, *, label: int, request_id: str | None = None, record_id: str | None = None
    ) -> dict[str, Any]:
        """Attach a ground-truth label to the answered prediction of a request (or the
        latest one of a record). UnknownPredictionError if none, DuplicateLabelError if the
        prediction already has a label."""
        self.flush()
        answered = PREDICTIONS.c.route != "shadow"
        if request_id is not None:
            where = (PREDICTIONS.c.request_id == request_id) & answered
            asked = f"request_id '{request_id}'"
        else:
            where = (PREDICTIONS.c.record_id == record_id) & answered
            asked = f"{self.id_name} '{record_id}'"
        query = (
            sa.select(PREDICTIONS.c.request_id, PREDICTIONS.c.record_id)
            .where(where)
            .order_by(PREDICTIONS.c.id.desc())
            .limit(1)
        )
        with self.engine.begin() as connection:
            found = connection.execute(query).first() if self._table_exists(connection) else None
            if found is None:
                raise UnknownPredictionError(f"no prediction was served for {asked}")
            row = {
                "request_id": found.request_id,
                "record_id": found.record_id,
                "label": label,
                "received_at": dt.datetime.now(dt.UTC),
            }
            try:
                with connection.begin_nested():
                    connection.execute(FEEDBACK.insert(), row)
            except IntegrityError as exc:
                raise DuplicateLabelError(
                    f"prediction {found.request_id} ({asked}) already has a label"
                ) from exc
        return row

    def _table_exists(self, connection: sa.Connection) -> bool:
        return sa.inspect(connection).has_table("predictions")
