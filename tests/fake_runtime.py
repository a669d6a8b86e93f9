"""An in-memory runtime whose services behave as scripted, for fast in-process engine
tests. It stands in for the process runtime (it reads the same template section) and is
held to the same contract suite as the real runtimes (tests/integration/
test_runtime_contract.py), so that what the engine tests learn on it holds on them.

A script says how a service behaves once started: healthy after a delay, or exiting at
once with a code, and what it logs. `faults` injects a backend's failures: the next calls
of a method raise the errors queued for it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from launchbay.domain.names import ServiceName, SpaceName
from launchbay.domain.plan import Observed
from launchbay.domain.spec import Address, ResolvedService
from launchbay.domain.template import Service
from launchbay.runtimes.base import Runtime, ServiceFailed, SpaceRef


@dataclass(frozen=True)
class Script:
    ready_after: float = 0.0
    exit_code: int | None = None
    log: tuple[str, ...] = ("started",)
    # Refused at start, as a command that does not exist is by some runtimes.
    refuse: str = ""
    # The runtime's own readiness (Docker's healthcheck, a Deployment's rollout), reported
    # whether or not the template has a `health:`.
    own_ready_after: float | None = None


@dataclass
class _Run:
    started: float
    script: Script
    stopped: bool = False


@dataclass
class FakeRuntime(Runtime):
    scripts: Mapping[str, Script] = field(default_factory=dict)
    clock: Callable[[], float] = time.monotonic
    name: str = "process"
    faults: dict[str, list[Exception]] = field(default_factory=dict)
    _runs: dict[SpaceName, dict[ServiceName, _Run]] = field(default_factory=dict)
    _ports: dict[tuple[SpaceName, ServiceName], int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _fault(self, method: str) -> None:
        with self._lock:
            queued = self.faults.get(method)
            error = queued.pop(0) if queued else None
        if error is not None:
            raise error

    def check(self) -> str:
        self._fault("check")
        return "in memory"

    def addresses(
        self, space: SpaceRef, services: Mapping[ServiceName, Service]
    ) -> dict[ServiceName, Address]:
        with self._lock:
            for name in services:
                self._ports.setdefault((space.name, name), 20000 + len(self._ports))
            return {n: Address("127.0.0.1", self._ports[(space.name, n)]) for n in services}

    def endpoints(self, space: SpaceRef, service: ResolvedService) -> dict[str, str]:
        address = self.addresses(space, {service.name: service.spec})[service.name]
        return {e.name: address.url + e.path for e in service.spec.endpoints}

    def start(self, space: SpaceRef, service: ResolvedService) -> None:
        self._fault("start")
        script = self.scripts.get(service.name, Script())
        if script.refuse:
            raise ServiceFailed(service.name, script.refuse)
        with self._lock:
            runs = self._runs.setdefault(space.name, {})
            current = runs.get(service.name)
            if current is not None and not current.stopped and current.script.exit_code is None:
                return
            runs[service.name] = _Run(self.clock(), script)

    def probe(self, space: SpaceRef, service: ResolvedService) -> Observed:
        self._fault("probe")
        with self._lock:
            run = self._runs.get(space.name, {}).get(service.name)
        if run is None or run.stopped:
            return Observed(running=False, healthy=None, detail="not running")
        if run.script.exit_code is not None:
            return Observed(
                running=False, healthy=None, detail=f"exited with code {run.script.exit_code}"
            )
        if service.spec.health is None:
            if run.script.own_ready_after is not None:
                up = self.clock() - run.started >= run.script.own_ready_after
                return Observed(
                    running=True, healthy=up, detail="available" if up else "rolling out"
                )
            return Observed(running=True, healthy=None, detail="running (no health check)")
        healthy = self.clock() - run.started >= run.script.ready_after
        return Observed(running=True, healthy=healthy, detail="healthy" if healthy else "starting")

    def stop(self, space: SpaceRef, service: ServiceName) -> None:
        self._fault("stop")
        with self._lock:
            run = self._runs.get(space.name, {}).get(service)
            if run is not None:
                run.stopped = True

    def kill(self, space: SpaceName, service: str) -> None:
        """The service dies on its own (as a process killed from outside would)."""
        with self._lock:
            self._runs[space][ServiceName(service)].stopped = True

    def destroy(self, space: SpaceRef) -> None:
        self._fault("destroy")
        with self._lock:
            self._runs.pop(space.name, None)

    def spaces(self) -> set[SpaceName]:
        self._fault("spaces")
        with self._lock:
            return set(self._runs)

    def running(self, space: str) -> set[str]:
        with self._lock:
            return {
                name
                for name, run in self._runs.get(SpaceName(space), {}).items()
                if not run.stopped and run.script.exit_code is None
            }

    def logs(
        self,
        space: SpaceRef,
        service: ServiceName,
        *,
        tail: int,
        follow: bool,
        stop: threading.Event | None = None,
    ) -> Iterator[str]:
        self._fault("logs")  # raised while the caller reads, as a backend's stream does
        with self._lock:
            run = self._runs.get(space.name, {}).get(service)
        lines: Sequence[str] = run.script.log if run else ()
        yield from [line + "\n" for line in lines][-tail:] if tail else []
        # A follow of a quiet log: nothing new until the caller stops it; a real stream
        # closed under its reader may then raise (queue it as the fault "follow-closed").
        while follow and stop is not None and not stop.wait(0.05):
            pass
        if follow:
            self._fault("follow-closed")
