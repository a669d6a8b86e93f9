"""The engine's core: the store, the guarded runtimes, the workers and the catalog, and
the recorders every part writes through.

Every change to a space goes through `set_phase` / `set_services` / `record` here, as an
event that says who and why, so the phase follows the services in one place. The parts
above it (`requests`, `provisioning`, `deploys`, `loops`, `queries`; wired by
`assembly.Launchbay`) decide what to change; workers on any replica run the jobs from the
store, one at a time per space, so that a crash loses no accepted work.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from launchbay.domain.auth import SYSTEM
from launchbay.domain.errors import (
    Conflict,
    LaunchbayError,
    NotFound,
)
from launchbay.domain.events import EventKind
from launchbay.domain.jobs import JobKind
from launchbay.domain.names import ServiceName, SpaceName
from launchbay.domain.notices import NoticeKind, text_of
from launchbay.domain.overrides import Limits
from launchbay.domain.phases import DeployResult, Phase, ServiceStatus, can_transition
from launchbay.domain.plan import phase_for
from launchbay.domain.spec import (
    ResolvedService,
    resolve_services,
)
from launchbay.domain.template import RunsOn, Template
from launchbay.engine.catalog import TemplateCatalog
from launchbay.engine.jobs import Cancelled, Workers, wall_clock
from launchbay.engine.metrics import EngineMetrics
from launchbay.engine.runtimes import GuardedRuntime, RuntimeBoard
from launchbay.engine.threads import Threads
from launchbay.engine.views import SpaceView
from launchbay.runtimes.base import Runtime, RuntimeRegistry, SpaceRef
from launchbay.runtimes.registry import section_of
from launchbay.store import jobs as store_jobs
from launchbay.store import notices as store_notices
from launchbay.store import queries as q
from launchbay.store.db import Store
from launchbay.store.leader import LeaderLock
from launchbay.store.models import Space

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


# The phases a space's people are told of.
NOTICES = {
    Phase.READY: NoticeKind.READY,
    Phase.FAILED: NoticeKind.FAILED,
    Phase.DELETED: NoticeKind.DELETED,
}


@dataclass(frozen=True)
class EngineSettings:
    reconcile_interval: float = 5.0
    # Far shorter than the shortest TTL: a space outlives its expiry by at most one sweep.
    sweep_interval: float = 1.0
    # Copilot: expired spaces are marked and recorded, never deleted.
    copilot: bool = False
    max_restarts: int = 3
    # An orphan (resources with no live record) is removed once seen for this long.
    orphan_grace: float = 30.0
    workers: int = 16
    limits: Limits = field(default_factory=Limits)
    # The shortest TTL a space may ask for (`--min-ttl`): shorter ones are refused.
    min_ttl: timedelta = timedelta(minutes=1)
    # Runtimes only admins may create spaces on (the process runtime on a shared server:
    # its services run on the server's own machine).
    admin_only_runtimes: frozenset[str] = frozenset()
    # This server's name among replicas: spaces on machine-local runtimes are pinned to it.
    node: str = "local"


@dataclass(frozen=True)
class Loop:
    """A pass run every `interval` seconds (only while this server leads, if `leader_only`)."""

    name: str
    interval: float
    step: Callable[[Engine], None]
    leader_only: bool = False


@dataclass(frozen=True)
class ServiceChange:
    name: ServiceName
    status: ServiceStatus
    detail: str
    ready_seconds: float | None = None


@dataclass(frozen=True)
class Snapshot:
    """What a job needs of a space, read once so that no session is held while it works."""

    id: int
    ref: SpaceRef
    runtime: str
    params: dict[str, str]
    overrides: dict[str, dict[str, str]]
    generation: int

    @classmethod
    def of(cls, space: Space) -> Snapshot:
        ref = SpaceRef(
            name=SpaceName(space.name),
            owner=space.owner,
            template=space.template,
            expires_at=space.expires_at,
        )
        return cls(
            space.id,
            ref,
            space.runtime,
            dict(space.params),
            dict(space.overrides),
            space.generation,
        )


class Engine:
    def __init__(
        self,
        *,
        store: Store,
        runtimes: RuntimeRegistry,
        catalog: TemplateCatalog,
        settings: EngineSettings,
        clock: Clock = utcnow,
    ) -> None:
        self.store = store
        self.board = RuntimeBoard(runtimes)
        # Every call into a runtime goes through the board, so one runtime's failure marks
        # it unavailable instead of stopping the engine's work on the others.
        self.runtimes: RuntimeRegistry = {
            name: GuardedRuntime(self.board, name) for name in runtimes
        }
        self.catalog = catalog
        self.settings = settings
        self.clock = clock
        self.metrics = EngineMetrics()
        self.metrics.watch(
            store,
            runtimes=lambda: {n: self.board.state(n).available for n in self.board.runtimes},
            clock=clock,
        )
        self.threads = Threads(stopping=threading.Event(), metrics=self.metrics)
        self.jobs = Workers(
            store,
            node=settings.node,
            slots=settings.workers,
            record=self._record_by_id,
            metrics=self.metrics,
            threads=self.threads,
        )
        self._stopping = self.threads.stopping
        self.leader = LeaderLock(store)
        # Orphans the reconciler has seen, by (runtime, space): when each was first seen.
        self.orphans_seen: dict[tuple[str, str], float] = {}

    # -- recording what happened, for requests, jobs and loops --------------------------

    def enqueue(self, s: Session, space: Space, kind: JobKind, **args: str) -> None:
        """Queue a job for the space in the caller's transaction: the job exists exactly
        when what it serves was written."""
        store_jobs.enqueue(s, space, kind, now=wall_clock(), args=args)
        self.jobs.wake_after_commit(s)

    def view(self, space: Space) -> SpaceView:
        """A frozen copy of the space, with why its runtime is down if it is."""
        return SpaceView.of(space, runtime_unavailable=self.board.unavailable_reason(space.runtime))

    def resolve(
        self, snapshot: Snapshot, template: Template, runtime: Runtime
    ) -> dict[ServiceName, ResolvedService]:
        addresses = runtime.addresses(snapshot.ref, template.services)
        return resolve_services(
            template,
            space=snapshot.ref.name,
            owner=snapshot.ref.owner,
            params=snapshot.params,
            overrides=snapshot.overrides,
            addresses=addresses,
            domain=runtime.domain(snapshot.ref),
        )

    def record_endpoints(
        self, snapshot: Snapshot, services: Mapping[ServiceName, ResolvedService], runtime: Runtime
    ) -> None:
        endpoints = {
            name: runtime.endpoints(snapshot.ref, service) for name, service in services.items()
        }
        with self.store.write() as s:
            space = q.space_for_update(s, snapshot.id)
            for state in space.services:
                if state.name in services:
                    state.endpoints = endpoints[ServiceName(state.name)]
                    state.version = services[ServiceName(state.name)].version

    def set_service(
        self,
        snapshot: Snapshot,
        name: ServiceName,
        status: ServiceStatus,
        detail: str,
        *,
        ready_seconds: float | None = None,
        settle: bool = False,
    ) -> None:
        """Record a service's status; with `settle`, the space's phase follows in the same
        transaction (nobody ever reads a failed service in a space still called ready)."""
        self.set_services(
            snapshot, [ServiceChange(name, status, detail, ready_seconds)], settle=settle
        )

    def set_services(
        self, snapshot: Snapshot, changes: Sequence[ServiceChange], *, settle: bool = False
    ) -> None:
        """Record several services' statuses in one transaction."""
        if not changes:
            return
        with self.store.write() as s:
            space = q.space_for_update(s, snapshot.id)
            for change in changes:
                state = q.service_state(space, change.name)
                if state.status != change.status.value:
                    q.add_event(
                        s,
                        space,
                        actor=SYSTEM.name,
                        kind=EventKind.of_service(change.status),
                        now=self.clock(),
                        message=f"{change.name}: {change.detail}",
                    )
                state.status, state.detail = change.status, change.detail
                state.updated_at = self.clock()
                if change.ready_seconds is not None:
                    state.ready_seconds = round(change.ready_seconds, 3)
            if settle:
                self._settle(s, space)

    def settle_phase(self, space_id: int) -> None:
        """Ready when every service is, degraded otherwise; only for settled, running spaces."""
        with self.store.write() as s:
            self._settle(s, q.space_for_update(s, space_id))

    def _settle(self, s: Session, space: Space) -> None:
        if space.phase not in (Phase.READY, Phase.DEGRADED):
            return
        phase = phase_for([x.status for x in space.services])
        # A degraded space says why: each service that is not ready, and its detail.
        space.reason = "; ".join(
            f"{x.name} {x.status}: {x.detail}" if x.detail else f"{x.name} {x.status}"
            for x in space.services
            if not x.status.is_up
        )
        self.set_phase(
            s,
            space,
            phase,
            actor=SYSTEM.name,
            kind=EventKind.of_phase(phase),
            message=", ".join(f"{x.name} {x.status}" for x in space.services),
        )

    def set_phase(
        self, s: Session, space: Space, phase: Phase, *, actor: str, kind: EventKind, message: str
    ) -> None:
        current = space.phase
        if current is phase:
            return
        if not can_transition(current, phase):
            raise Conflict(f"space {space.name!r} cannot go from {current} to {phase}")
        now = self.clock()
        space.phase, space.updated_at = phase, now
        if phase in (Phase.READY, Phase.PROVISIONING):
            space.reason = ""
        q.add_event(s, space, actor=actor, kind=kind, message=message, now=now, phase=phase)
        _owe_notice(s, space, phase, now)

    def settle_generation(self, s: Session, space: Space, generation: int, *, ok: bool) -> None:
        """A provision applied everything up to `generation`; deploys waiting on it end with it."""
        space.observed_generation = max(space.observed_generation, generation)
        for deploy in q.unfinished_deploys(s, space.id):
            if deploy.generation <= generation:
                deploy.result = DeployResult.SUCCEEDED if ok else DeployResult.FAILED
                deploy.detail = "applied by provisioning" if ok else space.reason
                deploy.finished_at = self.clock()

    def record(self, snapshot: Snapshot, *, kind: EventKind, message: str) -> None:
        self._record_by_id(snapshot.id, kind, message)

    def _record_by_id(self, space_id: int, kind: EventKind, message: str) -> None:
        with self.store.write() as s:
            space = q.space_for_update(s, space_id)
            q.add_event(s, space, actor=SYSTEM.name, kind=kind, message=message, now=self.clock())

    def live_for_update(self, s: Session, name: str) -> Space:
        space = q.live_space(s, name)
        locked = q.space_for_update(s, space.id) if space is not None else None
        if locked is None or locked.live_name is None:  # its delete finished meanwhile
            raise NotFound(f"no space named {name!r}")
        return locked

    def template_of(self, snapshot: Snapshot) -> Template:
        """The space's template as the space runs it (its Compose profiles, with its params)."""
        return self.catalog.get(snapshot.ref.template).for_space(snapshot.params)

    def runs_on(self, runtime: str) -> RunsOn:
        """The runtime as templates see it: the section of a service it runs."""
        return RunsOn(runtime, section_of(runtime))

    def runtimes_for(self, template: Template) -> list[str]:
        """This server's runtimes that can run every service of `template`, in the order
        of the registry (the zero-install one first)."""
        sections = template.sections()
        return [name for name in self.runtimes if self.runs_on(name).section in sections]

    def runtime(self, name: str) -> Runtime:
        self.board.get(name)  # raises if the runtime is not enabled here
        return self.runtimes[name]

    def cancel(self, space_id: int) -> threading.Event:
        return self.jobs.cancel(space_id)

    def check_stop(self, stops: Sequence[threading.Event]) -> None:
        if self._stopping.is_set() or any(e.is_set() for e in stops):
            raise Cancelled()

    def pause(self, seconds: float, stops: Sequence[threading.Event]) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.check_stop(stops)
            time.sleep(min(0.05, seconds))
        self.check_stop(stops)

    # -- loops ---------------------------------------------------------------------------

    def start(self, loops: Sequence[Loop] = ()) -> None:
        """Start working on jobs, and run each of `loops` in a thread of its own (the
        reconciler and the reaper: `engine.loops.install` makes them)."""
        self._adopt()
        self.jobs.start()
        for loop in loops:
            self.threads.start(loop.name, functools.partial(self._loop, loop))

    def _adopt(self) -> None:
        """Each runtime takes what its live spaces have from before everything carried the
        installation's id; a runtime that cannot be reached now is asked at the next start."""
        with self.store.read() as s:
            live = [(x.runtime, SpaceName(x.name)) for x in q.live_spaces(s)]
        for name, runtime in self.runtimes.items():
            try:
                runtime.adopt({space for on, space in live if on == name})
            except LaunchbayError as e:
                log.warning("runtime %s: could not adopt its earlier spaces: %s", name, e.message)

    def stop(self) -> None:
        self._stopping.set()
        self.jobs.stop()  # joins every thread started through `threads`, the loops too
        self.leader.release()
        for name, runtime in self.runtimes.items():
            try:
                runtime.close()
            except LaunchbayError as e:
                log.warning("runtime %s: did not close cleanly: %s", name, e.message)

    def _loop(self, loop: Loop) -> None:
        """Run the loop's step every `interval` seconds (while this server is the leader,
        if `leader_only`). A failed pass is logged and the next tick tries again; an error
        outside a pass (the leader lock's) reaches the thread's supervisor."""
        while not self._stopping.is_set():
            if not loop.leader_only or self.leader.holds():
                try:
                    with self.metrics.pass_seconds.labels(loop.name).time():
                        loop.step(self)
                except Exception:  # the pass boundary: log and go on at the next tick
                    log.exception("%s pass failed; trying again in %ss", loop.name, loop.interval)
            self._stopping.wait(loop.interval)


def _owe_notice(s: Session, space: Space, phase: Phase, now: datetime) -> None:
    """Owe the channels a notice of a space that became ready or failed (once per
    generation: a service that recovers is no news) or was deleted."""
    kind = NOTICES.get(phase)
    if kind is None:
        return
    key = "deleted" if kind is NoticeKind.DELETED else f"{kind}:{space.generation}"
    text = text_of(kind, reason=space.reason)
    store_notices.add_notice(s, space, kind, key=key, text=text, now=now)
