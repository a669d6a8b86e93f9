"""Leader election: exactly one server at a time runs the engine's loops.

On PostgreSQL, a session-level advisory lock held on a connection of its own: it is
released by the database when that connection ends, so a crashed leader frees it. On
SQLite, an exclusive `flock` on a file next to the database does the same for servers on
one machine.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from launchbay.store.db import Store

log = logging.getLogger(__name__)

# pg_advisory_lock key: "launchbay" in ASCII, folded into a signed 64-bit integer.
LOCK_KEY = int.from_bytes(b"launchby", "big") - (1 << 63)


class LeaderLock:
    """Asked by every loop thread and by /readyz: one statement at a time goes over its
    connection (a SQLAlchemy connection is not safe to share between threads)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._connection: Any = None
        self._file: int | None = None
        self._lock = threading.Lock()

    def holds(self) -> bool:
        """True while this server is the leader; tries to become it when it is not."""
        with self._lock:
            if self.store.is_sqlite:
                return self._flock()
            return self._advisory()

    def release(self) -> None:
        with self._lock:
            self._release()

    def _release(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(SQLAlchemyError):
                self._connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": LOCK_KEY})
                self._connection.close()
            self._connection = None
        if self._file is not None:
            os.close(self._file)  # closing the descriptor releases the flock
            self._file = None

    def _advisory(self) -> bool:
        try:
            if self._connection is not None:
                self._connection.execute(text("SELECT 1"))  # still ours while the session lives
                return True
            connection = self.store.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            got = connection.execute(
                text("SELECT pg_try_advisory_lock(:key)"), {"key": LOCK_KEY}
            ).scalar()
        except SQLAlchemyError as e:
            log.warning(
                "leader lock: the store did not answer, not leading: %s", str(e).splitlines()[0]
            )
            self._release()
            return False
        if got:
            self._connection = connection
            log.info("this server is the leader: it runs the reconciler and the reaper")
            return True
        connection.close()
        return False

    def _flock(self) -> bool:
        if self._file is not None:
            return True
        path = Path(self.store.engine.url.database or "launchbay.db").with_suffix(".leader")
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._file = fd
        return True
