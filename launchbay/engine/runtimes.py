"""Runtimes are isolated: one that cannot load, cannot reach its backend or fails during a
pass is `unavailable`, and the engine goes on with every other runtime's spaces.

The board remembers what each runtime last said and logs only the changes: one warning
when a runtime goes away, one line when it comes back, not one every reconcile pass.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

from launchbay.domain.errors import LaunchbayError, PermanentError
from launchbay.domain.names import ServiceName, SpaceName
from launchbay.domain.plan import Observed
from launchbay.domain.spec import Address, ResolvedService
from launchbay.domain.template import Service, Template
from launchbay.runtimes.base import (
    Progress,
    Runtime,
    RuntimeEvent,
    RuntimeRegistry,
    RuntimeUnavailable,
    SpaceRef,
    ignore_progress,
)

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class RuntimeState:
    name: str
    available: bool
    detail: str


class RuntimeBoard:
    """Which runtimes answer, as last seen; every call into a runtime that may fail in a
    way its own code did not translate goes through `guard`."""

    def __init__(self, runtimes: RuntimeRegistry) -> None:
        self.runtimes = runtimes
        self._states: dict[str, RuntimeState] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> Runtime:
        runtime = self.runtimes.get(name)
        if runtime is None:
            raise PermanentError(f"runtime {name!r} is not enabled on this server")
        return runtime

    def check(self, name: str) -> RuntimeState:
        """Ask the runtime now whether it can be used; never raises."""
        try:
            with self.guard(name):
                detail = self.get(name).check()
        except LaunchbayError as e:
            return self._note(name, e.message)
        return self.note_available(name, detail)

    def require(self, name: str) -> Runtime:
        """The runtime, if it answers now; else RuntimeUnavailable naming why and the fix."""
        state = self.check(name)
        if not state.available:
            raise RuntimeUnavailable(f"runtime {name!r} is unavailable: {state.detail}")
        return self.get(name)

    def states(self) -> dict[str, RuntimeState]:
        """Every runtime, checked now."""
        return {name: self.check(name) for name in self.runtimes}

    def state(self, name: str) -> RuntimeState:
        """As last seen (available until something said otherwise)."""
        with self._lock:
            return self._states.get(name, RuntimeState(name, available=True, detail=""))

    def down(self) -> dict[str, str]:
        """The runtimes last seen unavailable, with why (no runtime is asked now)."""
        with self._lock:
            return {n: s.detail for n, s in sorted(self._states.items()) if not s.available}

    def unavailable_reason(self, name: str) -> str | None:
        state = self.state(name)
        return None if state.available else state.detail

    @contextmanager
    def guard(self, name: str) -> Iterator[None]:
        """Around a call into runtime `name`: RuntimeUnavailable, or any error the runtime
        did not translate, marks it unavailable (raised as RuntimeUnavailable). Launchbay's
        other errors (a service that failed) say nothing about the runtime and pass."""
        try:
            yield
        except RuntimeUnavailable as e:
            self._note(name, e.message)
            raise
        except LaunchbayError:
            raise
        except Exception as e:  # a runtime's untranslated failure must not stop the engine
            reason = f"{type(e).__name__}: {(str(e).splitlines() or [''])[0]}".rstrip(": ")
            self._note(name, reason, error=e)
            raise RuntimeUnavailable(f"runtime {name!r} failed: {reason}") from e

    def note_available(self, name: str, detail: str = "") -> RuntimeState:
        """The runtime answered a call that needs its backend (a check, a listing)."""
        new = RuntimeState(name, available=True, detail=detail)
        with self._lock:
            old = self._states.get(name)
            if not detail and old is not None and old.available:
                new = old
            self._states[name] = new
        if old is not None and not old.available:
            log.warning("runtime %s is available again", name)
        return new

    def note_unavailable(self, name: str, reason: str) -> RuntimeState:
        """The runtime refused a call it must answer (a listing): unusable until it does."""
        return self._note(name, reason)

    def _note(self, name: str, reason: str, *, error: Exception | None = None) -> RuntimeState:
        new = RuntimeState(name, available=False, detail=reason)
        with self._lock:
            old = self._states.get(name)
            self._states[name] = new
        if old is None or old.available:
            log.warning(
                "runtime %s is unavailable: %s; its spaces wait, the other runtimes go on",
                name,
                reason,
                exc_info=error,
            )
        return new


class GuardedRuntime(Runtime):
    """A runtime seen through the board: its failures mark it unavailable."""

    def __init__(self, board: RuntimeBoard, name: str) -> None:
        self.board = board
        self.name = name

    def _call(self, action: Callable[[Runtime], T]) -> T:
        with self.board.guard(self.name):
            return action(self.board.get(self.name))

    def check(self) -> str:
        state = self.board.check(self.name)
        if not state.available:
            raise RuntimeUnavailable(state.detail)
        return state.detail

    def addresses(
        self, space: SpaceRef, services: Mapping[ServiceName, Service]
    ) -> dict[ServiceName, Address]:
        return self._call(lambda r: r.addresses(space, services))

    def endpoints(self, space: SpaceRef, service: ResolvedService) -> dict[str, str]:
        return self._call(lambda r: r.endpoints(space, service))

    def domain(self, space: SpaceRef) -> str:
        return self._call(lambda r: r.domain(space))

    def start(self, space: SpaceRef, service: ResolvedService) -> None:
        self._call(lambda r: r.start(space, service))

    def starts_together(self, template: Template) -> bool:
        return self._call(lambda r: r.starts_together(template))

    def start_all(
        self,
        space: SpaceRef,
        template: Template,
        services: Sequence[ResolvedService],
        params: Mapping[str, str],
        progress: Progress = ignore_progress,
    ) -> None:
        self._call(lambda r: r.start_all(space, template, services, params, progress))

    def probe(self, space: SpaceRef, service: ResolvedService) -> Observed:
        return self._call(lambda r: r.probe(space, service))

    def observe(
        self, space: SpaceRef, services: Sequence[ResolvedService]
    ) -> dict[ServiceName, Observed]:
        return self._call(lambda r: r.observe(space, services))

    def stop(self, space: SpaceRef, service: ServiceName) -> None:
        self._call(lambda r: r.stop(space, service))

    def sleep(self, space: SpaceRef, services: Sequence[ServiceName]) -> None:
        self._call(lambda r: r.sleep(space, services))

    def destroy(self, space: SpaceRef) -> None:
        self._call(lambda r: r.destroy(space))

    def spaces(self) -> set[SpaceName]:
        held = self._call(lambda r: r.spaces())
        self.board.note_available(self.name)
        return held

    def logs(
        self,
        space: SpaceRef,
        service: ServiceName,
        *,
        tail: int,
        follow: bool,
        stop: threading.Event | None = None,
    ) -> Iterator[str]:
        # A runtime's logs() is a generator: its backend is read while the caller iterates,
        # so the guard must hold around the iteration, not around the call that makes it.
        with self.board.guard(self.name):
            lines = self.board.get(self.name).logs(
                space, service, tail=tail, follow=follow, stop=stop
            )
        return self._guarded(lines, stop)

    def _guarded(self, lines: Iterator[str], stop: threading.Event | None) -> Iterator[str]:
        try:
            yield from lines
        except Exception:
            if stop is not None and stop.is_set():
                return  # its reader left and the stream was closed under it: no failure
            with self.board.guard(self.name):
                raise  # translated, and noted, as any other call's error

    def warnings(self, space: SpaceRef) -> list[RuntimeEvent]:
        return self._call(lambda r: r.warnings(space))

    def check_template(self, template: Template) -> None:
        self._call(lambda r: r.check_template(template))

    def check_space(self, name: SpaceName) -> None:
        self._call(lambda r: r.check_space(name))

    def close(self) -> None:
        self._call(lambda r: r.close())

    def destroy_orphan(self, name: SpaceName) -> None:
        self._call(lambda r: r.destroy_orphan(name))

    def adopt(self, spaces: Collection[SpaceName]) -> None:
        self._call(lambda r: r.adopt(spaces))

    def unconfined(self) -> str | None:
        return self.board.get(self.name).unconfined()
