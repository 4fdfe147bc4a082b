"""The prediction log: every served and shadow prediction, and delayed feedback labels.

Stored through SQLAlchemy (SQLite file by default, PostgreSQL by URL); the schema is
created and migrated by Alembic (migrations/). Requests only append to an in-memory
buffer; a background thread writes it in batches. If the database is down, records
stay buffered (up to ``max_buffer``; older ones are dropped and counted) and the
failures show in /metrics; `close()` writes whatever is buffered.

Privacy, both switched on in params.yaml (``serving.log``): ``pseudonymize_entity``
stores a keyed hash (HMAC-SHA256, hex) of the entity id instead of the clear value,
keyed by MODELOPS_PSEUDONYM_KEY and computed by the background writer, off the request
path; ``retention_days`` is enforced by `prune` (`modelops log prune`, `make prune-log`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import os
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.exc import ArgumentError, IntegrityError, SQLAlchemyError

from modelops.errors import InputError
from modelops.serving import telemetry

if TYPE_CHECKING:
    from modelops.config import PredictionLogSettings

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
URL_VARIABLE = "MODELOPS_LOG_URL"  # overrides serving.log.url
KEY_VARIABLE = "MODELOPS_PSEUDONYM_KEY"  # the pseudonyms' secret key; never in params.yaml
MIN_KEY_BYTES = 16
PRUNE_BATCH_ROWS = 5_000  # rows deleted per database commit: no long lock on a big log
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


class PseudonymKeyError(InputError):
    """Pseudonymised entity ids are on, but the key variable is unset or too short."""


def log_url(settings: PredictionLogSettings, environ: Mapping[str, str] = os.environ) -> str:
    """The log's database: MODELOPS_LOG_URL when set (and not empty), else serving.log.url."""
    return environ.get(URL_VARIABLE) or settings.url


def redacted(url: str) -> str:
    """``url`` without its password, fit to print."""
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(not a database URL)"


def pseudonym_key(environ: Mapping[str, str] = os.environ) -> bytes:
    """The secret key of the pseudonyms, from MODELOPS_PSEUDONYM_KEY (at least 16 bytes)."""
    key = environ.get(KEY_VARIABLE, "").encode()
    if len(key) < MIN_KEY_BYTES:
        state = f"is only {len(key)} bytes long" if key else "is not set"
        raise PseudonymKeyError(
            f"serving.log.pseudonymize_entity is on, but {KEY_VARIABLE} {state}: set it to a "
            f"secret of at least {MIN_KEY_BYTES} bytes (e.g. `openssl rand -hex 32`), kept "
            "out of git and params.yaml, or switch the setting off"
        )
    return key


class Pseudonymizer:
    """Replaces the entity id of log rows, in ``entity_id`` and in the inputs under the
    entity column, by the HMAC-SHA256 (hex) of its text. The same key and entity always
    give the same pseudonym, so rows can still be grouped by entity; without the key the
    clear value cannot be recovered or confirmed."""

    def __init__(self, key: bytes, entity_field: str | None) -> None:
        if len(key) < MIN_KEY_BYTES:
            raise PseudonymKeyError(f"a pseudonym key needs at least {MIN_KEY_BYTES} bytes")
        self._keyed = hmac.new(key, digestmod=hashlib.sha256)
        self.entity_field = entity_field

    def pseudonym(self, value: object) -> str:
        """The keyed hash of ``value``'s text, 64 hex digits."""
        digest = self._keyed.copy()
        digest.update(str(value).encode())
        return digest.hexdigest()

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        """A copy of ``row`` with its entity id pseudonymised (``row`` is left as it is:
        the served and the shadow row of a request share their inputs)."""
        done = dict(row)
        if row.get("entity_id") is not None:
            done["entity_id"] = self.pseudonym(row["entity_id"])
        inputs = row.get("inputs")
        field = self.entity_field
        if field and isinstance(inputs, dict) and inputs.get(field) is not None:
            done["inputs"] = {**inputs, field: self.pseudonym(inputs[field])}
        return done


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
        *,
        pseudonymizer: Pseudonymizer | None = None,
    ):
        self.url = url
        self.id_name = id_name  # what error messages call the record id (the API's name)
        self.pseudonymizer = pseudonymizer  # applied when rows are written, not recorded
        self.engine = make_engine(url)
        self.flush_interval_s = flush_interval_s
        self.max_buffer = max_buffer
        self._pending: deque[dict[str, Any]] = deque()
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._stop = threading.Event()
        self._migrated = False
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)

    @classmethod
    def from_settings(
        cls,
        settings: PredictionLogSettings,
        *,
        url: str | None = None,
        id_name: str = "record_id",
        entity_field: str | None = None,
        environ: Mapping[str, str] = os.environ,
    ) -> PredictionLog:
        """The log ``serving.log`` describes: at ``url``, else MODELOPS_LOG_URL, else
        ``settings.url``; with pseudonymised entity ids (the schema's entity column is
        ``entity_field``) when they are on, which needs MODELOPS_PSEUDONYM_KEY
        (PseudonymKeyError, raised here, when it is unset or too short)."""
        pseudonymizer = (
            Pseudonymizer(pseudonym_key(environ), entity_field)
            if settings.pseudonymize_entity
            else None
        )
        return cls(
            url or log_url(settings, environ),
            settings.flush_interval_s,
            settings.max_buffer,
            id_name=id_name,
            pseudonymizer=pseudonymizer,
        )

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
                # the buffer keeps rows as recorded; a retry pseudonymises them again
                rows = list(map(self.pseudonymizer, batch)) if self.pseudonymizer else batch
                with self.engine.begin() as connection:
                    connection.execute(PREDICTIONS.insert(), rows)
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


@dataclass(frozen=True)
class Pruned:
    """What `prune` deleted (or, on a dry run, would delete)."""

    cutoff: dt.datetime  # rows older than this go
    predictions: int
    feedback: int  # labels received before the cutoff
    orphaned_feedback: int  # newer labels whose prediction is older than the cutoff
    dry_run: bool
    found: bool = True  # False: there is no log at the URL (nothing to delete)


def prune(
    url: str,
    retention_days: int,
    *,
    dry_run: bool = False,
    now: dt.datetime | None = None,
    batch_rows: int = PRUNE_BATCH_ROWS,
) -> Pruned:
    """Delete predictions created more than ``retention_days`` before ``now``, feedback
    received that long ago, and feedback whose prediction goes (or went) with them.

    Each batch of at most ``batch_rows`` rows is committed on its own (short), so the
    service keeps writing meanwhile; feedback goes first, so no label is ever left
    without its prediction. A dry run only counts. A missing log deletes nothing."""
    if retention_days < 1 or batch_rows < 1:
        raise InputError(f"retention_days ({retention_days}) and batch_rows must be positive")
    now = now or dt.datetime.now(dt.UTC)
    cutoff = (now - dt.timedelta(days=retention_days)).astimezone(dt.UTC)
    nothing = Pruned(cutoff, 0, 0, 0, dry_run, found=False)
    database = sa.make_url(url).database if url.startswith("sqlite") else None
    if database and database != ":memory:" and not Path(database).exists():
        return nothing  # opening it would create an empty file
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            if not _log_exists(connection):
                return nothing
        kept = sa.exists().where(
            (PREDICTIONS.c.request_id == FEEDBACK.c.request_id)
            & (PREDICTIONS.c.created_at >= cutoff)
        )
        old_feedback = FEEDBACK.c.received_at < cutoff
        orphaned = (FEEDBACK.c.received_at >= cutoff) & ~kept
        old_predictions = PREDICTIONS.c.created_at < cutoff
        count = _count if dry_run else _delete
        return Pruned(
            cutoff,
            predictions=count(engine, PREDICTIONS, old_predictions, batch_rows),
            feedback=count(engine, FEEDBACK, old_feedback, batch_rows),
            orphaned_feedback=count(engine, FEEDBACK, orphaned, batch_rows),
            dry_run=dry_run,
        )
    finally:
        engine.dispose()


def _log_exists(connection: sa.Connection) -> bool:
    inspector = sa.inspect(connection)
    return inspector.has_table("predictions") and inspector.has_table("feedback")


def _count(
    engine: sa.Engine, table: sa.Table, where: sa.ColumnElement[bool], _batch_rows: int
) -> int:
    """How many rows match ``where`` (what `_delete` would delete)."""
    with engine.connect() as connection:
        query = sa.select(sa.func.count()).select_from(table).where(where)
        return int(connection.execute(query).scalar_one())


def _delete(
    engine: sa.Engine, table: sa.Table, where: sa.ColumnElement[bool], batch_rows: int
) -> int:
    """Delete the rows matching ``where`` in id order, at most ``batch_rows`` per
    commit (keyset batches: each starts after the last id of the one before)."""
    deleted, after = 0, 0
    while True:
        with engine.begin() as connection:
            batch = (
                sa.select(table.c.id)
                .where(where & (table.c.id > after))
                .order_by(table.c.id)
                .limit(batch_rows)
                .subquery()
            )
            last = connection.execute(sa.select(sa.func.max(batch.c.id))).scalar_one()
            if last is None:
                return deleted
            in_batch = where & (table.c.id > after) & (table.c.id <= last)
            deleted += connection.execute(sa.delete(table).where(in_batch)).rowcount
            after = last
