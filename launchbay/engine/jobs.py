"""Background jobs, serialised per space: different spaces run in parallel."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

log = logging.getLogger(__name__)


class Jobs:
    """A thread pool where jobs of one space run one at a time, in the order submitted.

    A job of a given kind that is already queued for a space is not queued twice, so a
    double-clicked button or a reconcile pass that finds the same work again adds nothing.
    """

    def __init__(self, *, workers: int) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="launchbay-job")
        self._lock = threading.Lock()
        self._space_locks: dict[int, threading.Lock] = {}
        self._queued: set[tuple[int, str]] = set()
        self._active: Counter[int] = Counter()

    def submit(self, space_id: int, kind: str, job: Callable[[], None], *, label: str) -> bool:
        """Queue `job`; False if the same kind was already queued for this space."""
        with self._lock:
            if (space_id, kind) in self._queued:
                return False
            self._queued.add((space_id, kind))
            self._active[space_id] += 1
            space_lock = self._space_locks.setdefault(space_id, threading.Lock())
        self._pool.submit(self._run, space_id, kind, job, space_lock, label)
        return True

    @contextmanager
    def idle(self, space_id: int) -> Iterator[bool]:
        """Hold the space's lock while no job of it is queued or running: True inside if
        held, False if the space is busy (then the caller leaves it for the next pass). Work
        done beside the jobs (the reconciler's) can then never interleave with them."""
        with self._lock:
            space_lock = self._space_locks.setdefault(space_id, threading.Lock())
            if self._active[space_id] > 0 or not space_lock.acquire(blocking=False):
                held = False
            else:
                held = True
        try:
            yield held
        finally:
            if held:
                space_lock.release()

    def busy(self, space_id: int) -> bool:
        with self._lock:
            return self._active[space_id] > 0

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _run(
        self,
        space_id: int,
        kind: str,
        job: Callable[[], None],
        space_lock: threading.Lock,
        label: str,
    ) -> None:
        try:
            with space_lock:
                with self._lock:
                    self._queued.discard((space_id, kind))
                job()
        except Exception:  # a loop boundary: one space's failure must not stop the others
            log.exception("space %s: %s job failed unexpectedly", label, kind)
        finally:
            with self._lock:
                self._queued.discard((space_id, kind))
                self._active[space_id] -= 1
                if self._active[space_id] <= 0:
                    del self._active[space_id]
