"""Opening the store: engine, pragmas, migrations and the unit of work."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry

from launchbay.domain.errors import TemporaryError
from launchbay.domain.urls import redacted

MIGRATIONS = Path(__file__).parent / "migrations"
BUSY_TIMEOUT_MS = 30_000
# pg_advisory_xact_lock key for migrations ("lbmigr" in ASCII), distinct from the leader's.
MIGRATION_LOCK = 0x6C626D69677200


class StoreUnavailable(TemporaryError):
    """The database cannot take writes right now (disk full, read-only, unreachable)."""


class Store:
    """The database. Callers own the unit of work: helpers never commit on their own.

    Use `with store.write() as s:` for anything that writes (on SQLite it opens the
    transaction with BEGIN IMMEDIATE, so two writers queue on the busy timeout instead of
    failing with "database is locked" when both read then write) and `store.read()` for
    read-only work, which never blocks writers in WAL mode.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = _create(url)
        writer = self.engine.execution_options(launchbay_write=True)
        self._reader = sessionmaker(self.engine, expire_on_commit=False)
        self._writer = sessionmaker(writer, expire_on_commit=False)
        # Why the last write failed, until one succeeds: /readyz says not ready meanwhile.
        self.write_failure: str | None = None
        # SQLite has one writer at a time, and one server owns its file: its writers take
        # turns here, woken as soon as the one before commits, instead of in SQLite's busy
        # handler, which polls with sleeps that grow to 100 ms (a burst of webhooks waited
        # up to a second for that). Writes a client is waiting on go first.
        self._turns = Turns() if self.is_sqlite else None

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    def migrate(self) -> None:
        """Bring the schema to the newest migration. Idempotent, and safe to run from any
        number of replicas at once: on PostgreSQL they take turns under an advisory lock, and
        each after the first finds the schema current."""
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        try:
            self._upgrade(config)
        except OperationalError as e:
            reason = str(e.orig or e).strip().splitlines()[0]
            where = redacted(self.url)
            raise StoreUnavailable(f"cannot open the database {where}: {reason}") from e

    def _upgrade(self, config: Config) -> None:
        with self.engine.begin() as connection:
            if not self.is_sqlite:
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK}
                )
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    @contextmanager
    def write(self, *, urgent: bool = False) -> Iterator[Session]:
        """A write transaction. A database that cannot take it (disk full, read-only,
        gone) raises StoreUnavailable naming why, which callers answer with 503. `urgent`:
        someone waits on its answer (GitHub on a webhook's), so on SQLite it goes before
        the workers' writes that are waiting too."""
        turn = self._turns.turn(urgent=urgent) if self._turns else contextlib.nullcontext()
        try:
            with turn, self._writer() as session, session.begin():
                yield session
        except OperationalError as e:
            reason = str(e.orig or e).strip().splitlines()[0]
            self.write_failure = reason
            raise StoreUnavailable(f"the store cannot take writes: {reason}") from e
        self.write_failure = None

    def can_write(self) -> bool:
        """Whether a write gets through now (after one failed): a real write on SQLite,
        which touches the disk, a write transaction elsewhere."""
        if self.write_failure is None:
            return True
        try:
            with self.write() as s:
                if self.is_sqlite:
                    version = s.execute(text("PRAGMA user_version")).scalar_one()
                    s.execute(text(f"PRAGMA user_version = {int(version)}"))
                else:
                    s.execute(text("SELECT 1"))
        except StoreUnavailable:
            return False
        return True

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self._reader() as session, session.begin():
            yield session

    def close(self) -> None:
        self.engine.dispose()


class Turns:
    """One writer at a time in this process, reentrant; urgent writers waiting go before
    the others waiting (who wait at most as long as a burst of urgent ones lasts)."""

    def __init__(self) -> None:
        self._changed = threading.Condition(threading.Lock())
        self._owner: int | None = None
        self._depth = 0
        self._urgent_waiting = 0

    @contextmanager
    def turn(self, *, urgent: bool) -> Iterator[None]:
        me = threading.get_ident()
        with self._changed:
            if self._owner == me:
                self._depth += 1
            else:
                self._urgent_waiting += urgent
                try:
                    while self._owner is not None or (self._urgent_waiting and not urgent):
                        self._changed.wait()
                finally:
                    self._urgent_waiting -= urgent
                    if urgent:  # the others may go now, whether or not this one does
                        self._changed.notify_all()
                self._owner, self._depth = me, 1
        try:
            yield
        finally:
            with self._changed:
                self._depth -= 1
                if self._depth == 0:
                    self._owner = None
                    self._changed.notify_all()


def sqlite_url(data_dir: Path) -> str:
    return f"sqlite:///{data_dir / 'launchbay.db'}"


def _create(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)
    engine = create_engine(
        url, connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000}
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # Let SQLAlchemy's "begin" event below decide how transactions start.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        write = connection.get_execution_options().get("launchbay_write", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine
