"""Followed logs that never hold the server.

A runtime's followed log is a blocking iterator that may wait for a long time between
lines. Each follow reads it in a thread of its own (never one of the server's worker
threads, so a hundred quiet follows freeze nothing), hands lines over through a bounded
queue, and ends when the client goes away: the response checks for a disconnect every
`check_every` seconds even when the log is quiet, then sets the stop event that the
runtime's iterator watches. Follows are counted per user and in all, with a 429 beyond
either cap.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field

from launchbay.domain.errors import LaunchbayError

log = logging.getLogger(__name__)


class TooManyFollows(LaunchbayError):
    """Mapped to 429: the caller, or the server, follows as many logs as it may."""


@dataclass(frozen=True)
class FollowLimits:
    per_user: int = 20
    total: int = 200
    check_every: float = 1.0  # seconds between disconnect checks on a quiet log
    queue: int = 1000  # lines held for a slow reader before the reading thread waits


@dataclass
class Follows:
    limits: FollowLimits = field(default_factory=FollowLimits)
    _by_user: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def open(self) -> int:
        with self._lock:
            return sum(self._by_user.values())

    def acquire(self, user: str) -> None:
        with self._lock:
            if sum(self._by_user.values()) >= self.limits.total:
                raise TooManyFollows(
                    f"the server already follows {self.limits.total} logs; try again later"
                )
            if self._by_user.get(user, 0) >= self.limits.per_user:
                raise TooManyFollows(
                    f"you already follow {self.limits.per_user} logs; close one first"
                )
            self._by_user[user] = self._by_user.get(user, 0) + 1

    def release(self, user: str) -> None:
        with self._lock:
            left = self._by_user.get(user, 0) - 1
            if left > 0:
                self._by_user[user] = left
            else:
                self._by_user.pop(user, None)

    async def stream(
        self,
        user: str,
        lines: Iterator[str],
        *,
        stop: threading.Event,
        gone: Callable[[], Awaitable[bool]],
    ) -> AsyncIterator[str]:
        """The lines of a followed log (a runtime iterator that watches `stop`), until it
        ends or `gone()` says the client left. The caller acquired a slot for `user`; it is
        released here, whatever happens."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[str | None] = asyncio.Queue(maxsize=self.limits.queue)
        reader = threading.Thread(
            target=_read, args=(lines, stop, queue, loop), name="launchbay-follow", daemon=True
        )
        reader.start()
        try:
            while True:
                try:
                    line = await asyncio.wait_for(queue.get(), timeout=self.limits.check_every)
                except TimeoutError:
                    if await gone():
                        return
                    continue
                if line is None:
                    return
                yield line
        finally:
            stop.set()
            self.release(user)


def _read(
    source: Iterator[str],
    stop: threading.Event,
    queue: asyncio.Queue[str | None],
    loop: asyncio.AbstractEventLoop,
) -> None:
    def hand_over(line: str | None) -> bool:
        put = asyncio.run_coroutine_threadsafe(queue.put(line), loop)
        while True:
            try:
                put.result(timeout=0.5)
                return True
            except concurrent.futures.TimeoutError:
                if stop.is_set():
                    put.cancel()
                    return False
            except (concurrent.futures.CancelledError, RuntimeError):
                return False  # the loop is closing: the server is stopping

    try:
        for line in source:
            if stop.is_set() or not hand_over(line):
                return
    except LaunchbayError as e:
        hand_over(f"[launchbay: the log ended: {e.message}]\n")
    except Exception:  # the boundary of this thread: log it, end the follow
        log.exception("a followed log failed")
    finally:
        if not stop.is_set():
            hand_over(None)
