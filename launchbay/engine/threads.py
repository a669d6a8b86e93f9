"""Every thread the server starts runs under one error boundary.

A thread's target is a loop that returns only when the server stops. If it raises instead
(an unexpected database error, a bug), the supervisor logs it with the thread named,
counts the restart in `/metrics`, marks the thread down (so `/readyz` answers 503 naming
it) and starts the target again after a backoff; the thread counts as up again once its
target has run for `SETTLE` seconds without raising. Nothing dies silently.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from launchbay.engine.metrics import EngineMetrics

log = logging.getLogger(__name__)

# A target that ran this long before it raised was healthy: its backoff starts again.
HEALTHY_AFTER = 30.0
FIRST_DELAY, MAX_DELAY = 0.2, 10.0
# A restarted thread is down until its target has run this long without raising.
SETTLE = 1.0


class Threads:
    def __init__(self, *, stopping: threading.Event, metrics: EngineMetrics) -> None:
        self.stopping = stopping
        self._metrics = metrics
        self._threads: list[threading.Thread] = []
        # A thread that stopped: why, and when its target was started again (None: not yet).
        self._down: dict[str, tuple[str, float | None]] = {}
        self._lock = threading.Lock()

    def start(self, name: str, target: Callable[[], None]) -> None:
        """Run `target` in a thread named `launchbay-<name>` until the server stops."""
        thread = threading.Thread(
            target=self._supervise, args=(name, target), name=f"launchbay-{name}", daemon=True
        )
        thread.start()
        self._threads.append(thread)

    def down(self) -> dict[str, str]:
        """The threads restarting now, each with the error that stopped it."""
        now = time.monotonic()
        with self._lock:
            for name, (_, restarted) in list(self._down.items()):
                if restarted is not None and now - restarted >= SETTLE:
                    del self._down[name]
            return {name: reason for name, (reason, _) in self._down.items()}

    def join(self, timeout: float) -> None:
        for thread in self._threads:
            thread.join(timeout=timeout)
        self._threads.clear()

    def _supervise(self, name: str, target: Callable[[], None]) -> None:
        delay = FIRST_DELAY
        while not self.stopping.is_set():
            began = time.monotonic()
            try:
                target()
            except Exception as e:  # the thread's boundary: log, count, restart
                self._failed(name, e)
            else:
                return  # a target returns only when the server stops
            if time.monotonic() - began > HEALTHY_AFTER:
                delay = FIRST_DELAY
            if self.stopping.wait(delay):
                return
            delay = min(delay * 2, MAX_DELAY)
            with self._lock:
                self._down[name] = (self._down[name][0], time.monotonic())

    def _failed(self, name: str, error: Exception) -> None:
        reason = f"{type(error).__name__}: {(str(error).splitlines() or [''])[0]}"[:300]
        log.error("thread %s stopped (%s); starting it again", name, reason, exc_info=error)
        self._metrics.thread_restarts.labels(name).inc()
        with self._lock:
            self._down[name] = (reason, None)
