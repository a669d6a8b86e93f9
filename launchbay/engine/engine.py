"""The engine: creates, provisions, reconciles, expires and deletes spaces.

Every change to a space goes through here, recorded as an event that says who and why.
Requests (create, delete, extend, sleep, wake) write the wanted state and a job in one
transaction and return at once; workers on any replica run the jobs from the store, one
at a time per space, so that a crash loses no accepted work. The reconcile loop queues a
job for whatever differs from what was asked.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from launchbay.domain.auth import SYSTEM, Actor, require_owner_or_admin
from launchbay.domain.durations import format_duration, parse_duration
from launchbay.domain.errors import (
    Conflict,
    Forbidden,
    Invalid,
    LaunchbayError,
    NotFound,
    TemporaryError,
)
from launchbay.domain.jobs import JobKind
from launchbay.domain.names import ServiceName, SpaceName, parse_space_name
from launchbay.domain.overrides import Limits
from launchbay.domain.phases import DeployResult, Phase, ServiceStatus, can_transition
from launchbay.domain.plan import Observed, phase_for
from launchbay.domain.spec import (
    ResolvedService,
    choose_ttl,
    extended_expiry,
    parse_sets,
    resolve_params,
    resolve_services,
)
from launchbay.domain.template import Template
from launchbay.engine.catalog import TemplateCatalog
from launchbay.engine.jobs import Cancelled, Claimed, Workers, wall_clock
from launchbay.engine.metrics import EngineMetrics
from launchbay.engine.runtimes import GuardedRuntime, RuntimeBoard
from launchbay.runtimes.base import Runtime, RuntimeRegistry, ServiceFailed, SpaceRef
from launchbay.store import jobs as store_jobs
from launchbay.store import queries as q
from launchbay.store.db import Store
from launchbay.store.leader import LeaderLock
from launchbay.store.models import Event, Job, ServiceState, Space

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


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
class CreateSpace:
    name: str
    template: str
    runtime: str = "process"
    ttl: str | None = None
    params: Mapping[str, str] = field(default_factory=dict)
    sets: Mapping[str, str] = field(default_factory=dict)


def _is_up(service: ResolvedService, seen: Observed) -> bool:
    """Up by the runtime's account, as the runtime that started it reports (Compose's own
    rule): a job that completed, a service whose own health check passed, one running that
    has no check. A template `health:` is an extra gate, applied after."""
    if seen.completed:
        return True
    if service.spec.health is not None or not seen.running:
        return False
    return seen.healthy is not False


@dataclass(frozen=True)
class ServiceChange:
    name: ServiceName
    status: ServiceStatus
    detail: str
    ready_seconds: float | None = None


class _DependencyFailed(Exception):
    pass


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
        self.jobs = Workers(
            store,
            node=settings.node,
            slots=settings.workers,
            record=self._record_by_id,
            metrics=self.metrics,
        )
        self.jobs.handle(
            JobKind.PROVISION,
            lambda job: self.provision_job(job.space_id, actor=job.args.get("actor", SYSTEM.name)),
            give_up=self._provision_gave_up,
        )
        self.jobs.handle(JobKind.DELETE, lambda job: self._delete_job(job.space_id))
        self.jobs.handle(
            JobKind.SLEEP, lambda job: self._sleep_job(job.space_id, actor=job.args["actor"])
        )
        self.jobs.handle(
            JobKind.RESTART,
            lambda job: self.restart_job(
                job.space_id, job.args["service"], reason=job.args["reason"]
            ),
        )
        self._stopping = self.jobs.stopping
        self._loops: list[threading.Thread] = []
        self.leader = LeaderLock(store)
        # Orphans the reconciler has seen, by (runtime, space): when each was first seen.
        self.orphans_seen: dict[tuple[str, str], float] = {}

    # -- requests ------------------------------------------------------------------------

    def create(self, request: CreateSpace, *, actor: Actor) -> Space:
        """Validate everything, record the space as `pending` and queue its provisioning.

        Nothing is written unless the whole request is valid. Of two concurrent creates of
        one name exactly one wins; the other gets Conflict.
        """
        name = parse_space_name(request.name)
        template = self.catalog.get(request.template)
        self._check_runtime(template, request.runtime)
        if request.runtime in self.settings.admin_only_runtimes and not actor.is_admin:
            raise Forbidden(
                f"only admins may create spaces on the {request.runtime} runtime on this server"
            )
        runtime = self.runtime(request.runtime)
        runtime.check_space(name)
        # Docker down, no cluster access: a clear error now, not a hang later.
        self.board.require(request.runtime)
        params = resolve_params(template, request.params, self.settings.limits)
        template = template.for_space(params)
        runtime.check_template(template)
        overrides = parse_sets(
            request.sets, template, self.settings.limits, runtime=request.runtime
        )
        ttl = choose_ttl(template.ttl, request.ttl)
        now = self.clock()
        with self.store.write() as s:
            space = q.add_space(
                s,
                Space(
                    name=name,
                    live_name=name,
                    template=template.name,
                    runtime=request.runtime,
                    owner=actor.name,
                    params=params,
                    overrides=overrides,
                    phase=Phase.PENDING,
                    reason="",
                    created_at=now,
                    updated_at=now,
                    expires_at=now + ttl,
                    node=self.settings.node if self._machine_local(request.runtime) else None,
                ),
            )
            for position, service in enumerate(template.services):
                space.services.append(
                    ServiceState(
                        name=service,
                        position=position,
                        status=ServiceStatus.PENDING,
                        version=overrides.get(service, {}).get(
                            "version", template.services[service].version
                        ),
                        detail="",
                        restarts=0,
                        endpoints={},
                        updated_at=now,
                    )
                )
            q.add_event(
                s,
                space,
                actor=actor.name,
                kind="created",
                now=now,
                phase=Phase.PENDING,
                message=f"created from template {template.name} on {request.runtime}, "
                f"TTL {format_duration(ttl)}",
            )
            self.enqueue(s, space, JobKind.PROVISION, actor=actor.name)
        log.info("space %s: created by %s", name, actor.name)
        return space

    def delete(self, name: str, *, actor: Actor, reason: str = "") -> Space:
        """Mark the space `deleting` and queue the teardown. Idempotent: deleting a space
        that is being deleted, or is gone, returns it as it is."""
        with self.store.write() as s:
            space = q.find_space(s, name)
            if space.phase in (Phase.DELETING, Phase.DELETED):
                return space
            require_owner_or_admin(actor, owner=space.owner, space=space.name, action="delete")
            self.set_phase(
                s,
                space,
                Phase.DELETING,
                actor=actor.name,
                kind="delete-requested",
                message=reason or f"delete requested by {actor.name}",
            )
            self.enqueue(s, space, JobKind.DELETE)
        # A job of the space running here stops now; one on another replica at its
        # next heartbeat.
        self.cancel(space.id).set()
        return space

    def extend(self, name: str, *, by: str, actor: Actor) -> Space:
        duration = parse_duration(by)
        with self.store.write() as s:
            space = self.live_for_update(s, name)
            require_owner_or_admin(actor, owner=space.owner, space=space.name, action="extend")
            if space.phase is Phase.DELETING:
                raise Conflict(f"space {name!r} is being deleted")
            template = self.catalog.get(space.template)
            now = self.clock()
            space.expires_at = extended_expiry(
                expires_at=space.expires_at,
                created_at=space.created_at,
                by=duration,
                policy=template.ttl,
                now=now,
            )
            space.expired_at = None
            space.updated_at = now
            q.add_event(
                s,
                space,
                actor=actor.name,
                kind="extended",
                now=now,
                message=f"TTL extended by {format_duration(duration)}; "
                f"expires {space.expires_at.isoformat(timespec='seconds')}",
            )
        return space

    def sleep(self, name: str, *, actor: Actor) -> Space:
        with self.store.write() as s:
            space = self.live_for_update(s, name)
            require_owner_or_admin(
                actor, owner=space.owner, space=space.name, action="put to sleep"
            )
            phase = space.phase
            if phase is Phase.SLEEPING:
                return space
            if phase not in (Phase.READY, Phase.DEGRADED):
                raise Conflict(
                    f"space {name!r} is {phase}; only a ready or degraded space can sleep"
                )
            self.enqueue(s, space, JobKind.SLEEP, actor=actor.name)
        return space

    def wake(self, name: str, *, actor: Actor) -> Space:
        with self.store.write() as s:
            space = self.live_for_update(s, name)
            require_owner_or_admin(actor, owner=space.owner, space=space.name, action="wake")
            phase = space.phase
            if phase in (Phase.READY, Phase.DEGRADED, Phase.PROVISIONING, Phase.PENDING):
                return space
            if phase is not Phase.SLEEPING:
                raise Conflict(f"space {name!r} is {phase}; only a sleeping space can be woken")
            self.set_phase(
                s,
                space,
                Phase.PROVISIONING,
                actor=actor.name,
                kind="wake-requested",
                message=f"wake requested by {actor.name}",
            )
            self.enqueue(s, space, JobKind.PROVISION, actor=actor.name)
        return space

    # -- reads ---------------------------------------------------------------------------

    def get(self, name: str) -> Space:
        with self.store.read() as s:
            return q.find_space(s, name)

    def list_spaces(
        self, where: q.SpaceFilter, *, limit: int, before_id: int | None
    ) -> tuple[Sequence[Space], int]:
        with self.store.read() as s:
            return q.list_spaces(s, where, limit=limit, before_id=before_id)

    def page_spaces(
        self, where: q.SpaceFilter, *, sort: str, offset: int, limit: int
    ) -> tuple[Sequence[Space], int]:
        if sort not in q.SORTS:
            raise Invalid(f"sort must be one of {', '.join(q.SORTS)}")
        with self.store.read() as s:
            return q.page_spaces(s, where, sort=sort, offset=offset, limit=limit)

    def events(self, name: str, *, limit: int = 200) -> Sequence[Event]:
        with self.store.read() as s:
            return q.events(s, q.find_space(s, name), limit=limit)

    def logs(
        self,
        name: str,
        service: str,
        *,
        tail: int,
        follow: bool,
        stop: threading.Event | None = None,
    ) -> Iterator[str]:
        with self.store.read() as s:
            space = q.find_space(s, name)
            q.service_state(space, service)
            snapshot = Snapshot.of(space)
        return self.runtime(snapshot.runtime).logs(
            snapshot.ref, ServiceName(service), tail=tail, follow=follow, stop=stop
        )

    def runtime_status(self) -> dict[str, dict[str, object]]:
        return {
            name: {"ok": state.available, "detail": state.detail}
            for name, state in self.board.states().items()
        }

    # -- jobs ----------------------------------------------------------------------------

    def enqueue(self, s: Session, space: Space, kind: JobKind, **args: str) -> None:
        """Queue a job for the space in the caller's transaction: the job exists exactly
        when what it serves was written."""
        store_jobs.enqueue(s, space, kind, now=wall_clock(), args=args)
        self.jobs.wake_after_commit(s)

    def ready_history(self, template: str) -> list[float]:
        """Time to ready of the template's newest spaces (is it getting slower?)."""
        with self.store.read() as s:
            return q.ready_history(s, template)

    def jobs_of(self, name: str) -> list[Job]:
        """What is queued and running for the space, then what finished last."""
        with self.store.read() as s:
            return store_jobs.of_space(s, q.find_space(s, name).id)

    def provision_job(self, space_id: int, *, actor: str) -> None:
        with self.store.write() as s:
            space = q.space_for_update(s, space_id)
            if space.phase not in (Phase.PENDING, Phase.PROVISIONING):
                return
            self.set_phase(
                s,
                space,
                Phase.PROVISIONING,
                actor=actor,
                kind="provisioning",
                message="starting services in dependency order",
            )
            snapshot = Snapshot.of(space)
        cancel = self.cancel(space_id)
        started = time.monotonic()
        try:
            template = self.template_of(snapshot)
            runtime = self.runtime(snapshot.runtime)
            services = self.resolve(snapshot, template, runtime)
            self.record_endpoints(snapshot, services, runtime)
            if runtime.starts_together(template):
                self._bring_up_together(snapshot, template, services, runtime, cancel)
                # Ports the runtime chose while starting (replicas) are known only now.
                self.record_endpoints(snapshot, services, runtime)
            else:
                self._bring_up(snapshot, template, services, runtime, cancel)
        except ServiceFailed as e:
            self._fail(snapshot, e.message, service=e.service)
        except (TemporaryError, Conflict):
            raise  # the job wrapper retries it; provisioning again adopts what runs
        except LaunchbayError as e:
            self._fail(snapshot, e.message)
        else:
            took = time.monotonic() - started
            if self._finish_provision(snapshot, took) is Phase.READY:
                self.metrics.space_ready_seconds.labels(snapshot.ref.template).observe(took)

    def _bring_up(
        self,
        snapshot: Snapshot,
        template: Template,
        services: Mapping[ServiceName, ResolvedService],
        runtime: Runtime,
        cancel: threading.Event,
    ) -> None:
        """Start every service once its dependencies are healthy, independent ones in parallel."""
        abort = threading.Event()
        futures: dict[str, Future[None]] = {}
        with ThreadPoolExecutor(
            max_workers=len(services), thread_name_prefix="launchbay-svc"
        ) as pool:
            for layer in template.dependency_order():
                for name in layer:
                    deps = [futures[d] for d in services[name].spec.depends_on]
                    futures[name] = pool.submit(
                        self._bring_up_service,
                        snapshot,
                        services[name],
                        runtime,
                        deps,
                        (cancel, abort),
                    )
            wait(futures.values(), return_when=FIRST_EXCEPTION)
            if any(f.done() and f.exception() for f in futures.values()):
                abort.set()
        errors = [e for f in futures.values() if (e := f.exception()) is not None]
        root = [e for e in errors if not isinstance(e, _DependencyFailed | Cancelled)]
        if root:
            raise root[0]
        if errors:
            raise Cancelled()

    def _bring_up_together(
        self,
        snapshot: Snapshot,
        template: Template,
        services: Mapping[ServiceName, ResolvedService],
        runtime: Runtime,
        cancel: threading.Event,
    ) -> None:
        """The runtime starts the services itself (Compose orders and gates them); the
        engine watches, recording each service as it comes up, then applies the template's
        own health checks as an extra gate. Jobs that completed are not run again."""
        done = set(self._completed(snapshot.id))
        starting = [s for name, s in services.items() if name not in done]
        if not starting:
            return
        self.set_services(
            snapshot, [ServiceChange(s.name, ServiceStatus.STARTING, "starting") for s in starting]
        )
        started = time.monotonic()
        waiting = {s.name: s for s in starting}
        lock = threading.Lock()

        def progress(name: ServiceName, seen: Observed) -> None:
            """What the runtime reports while it starts them (Docker's events)."""
            with lock:
                service = waiting.get(name)
                if service is None or not _is_up(service, seen):
                    return
                del waiting[name]
            self.set_services(snapshot, [self._up_change(snapshot, service, seen, started)])

        runtime.start_all(snapshot.ref, template, starting, snapshot.params, progress)
        self._check_stop((cancel,))
        self._mark_up(snapshot, runtime, waiting, started)
        for service in waiting.values():
            seen = self.wait_healthy(snapshot, service, runtime, (cancel,))
            self._service_up(snapshot, service, seen, started)

    def _mark_up(
        self,
        snapshot: Snapshot,
        runtime: Runtime,
        waiting: dict[ServiceName, ResolvedService],
        started: float,
    ) -> None:
        """Once the runtime is done starting, record what its events did not: each service
        that is up by the runtime's account."""
        if not waiting:
            return
        changes = []
        for name, seen in runtime.observe(snapshot.ref, list(waiting.values())).items():
            if _is_up(waiting[name], seen):
                changes.append(self._up_change(snapshot, waiting.pop(name), seen, started))
        self.set_services(snapshot, changes)

    def _service_up(
        self, snapshot: Snapshot, service: ResolvedService, seen: Observed, started: float
    ) -> None:
        self.set_services(snapshot, [self._up_change(snapshot, service, seen, started)])

    def _up_change(
        self, snapshot: Snapshot, service: ResolvedService, seen: Observed, started: float
    ) -> ServiceChange:
        """A service is up (a job: completed), `started` seconds (monotonic) ago; counted."""
        took = time.monotonic() - started
        status = ServiceStatus.COMPLETED if seen.completed else ServiceStatus.READY
        self.metrics.service_ready_seconds.labels(snapshot.ref.template, service.name).observe(took)
        return ServiceChange(service.name, status, seen.detail or "running", took)

    def _completed(self, space_id: int) -> list[str]:
        with self.store.read() as s:
            space = q.space_for_update(s, space_id)
            return [x.name for x in space.services if x.status is ServiceStatus.COMPLETED]

    def _bring_up_service(
        self,
        snapshot: Snapshot,
        service: ResolvedService,
        runtime: Runtime,
        deps: Sequence[Future[None]],
        stops: tuple[threading.Event, threading.Event],
    ) -> None:
        for dep in deps:
            if dep.exception() is not None:
                raise _DependencyFailed()
        self._check_stop(stops)
        seen = runtime.probe(snapshot.ref, service)
        if seen.completed:  # a job that already ran: not run again
            self.set_service(snapshot, service.name, ServiceStatus.COMPLETED, seen.detail)
            return
        if seen.running and seen.healthy is not False:
            self.set_service(snapshot, service.name, ServiceStatus.READY, seen.detail or "running")
            return
        self.set_service(
            snapshot, service.name, ServiceStatus.STARTING, f"starting {service.version}"
        )
        started = time.monotonic()
        runtime.start(snapshot.ref, service)
        seen = self.wait_healthy(snapshot, service, runtime, stops)
        self._service_up(snapshot, service, seen, started)

    def wait_healthy(
        self,
        snapshot: Snapshot,
        service: ResolvedService,
        runtime: Runtime,
        stops: tuple[threading.Event, ...],
    ) -> Observed:
        health = service.spec.health
        timeout = health.timeout if health else timedelta(seconds=30)
        interval = health.interval.total_seconds() if health else 0.5
        deadline = time.monotonic() + timeout.total_seconds()
        running_since: float | None = None
        while True:
            self._check_stop(stops)
            seen = runtime.probe(snapshot.ref, service)
            if seen.completed:
                return seen
            if not seen.running:
                raise ServiceFailed(
                    service.name,
                    seen.detail,
                    log_tail=self.log_tail(snapshot, service.name, runtime),
                )
            if health is not None and seen.healthy:
                return seen
            if health is None and seen.healthy is not None:
                if seen.healthy:  # the runtime's own health check (Docker's) passed
                    return seen
            elif health is None:
                # Without any health check, "ready" is "still running a moment after start".
                running_since = running_since or time.monotonic()
                if time.monotonic() - running_since >= 1.0:
                    return seen
            if time.monotonic() > deadline:
                raise ServiceFailed(
                    service.name,
                    f"not healthy after {format_duration(timeout)} ({seen.detail})",
                    log_tail=self.log_tail(snapshot, service.name, runtime),
                )
            self._pause(min(interval, max(deadline - time.monotonic(), 0.05)), stops)

    def _finish_provision(self, snapshot: Snapshot, took: float) -> Phase | None:
        """Ready or degraded, as the services are; None if the space moved on meanwhile."""
        with self.store.write() as s:
            space = q.space_for_update(s, snapshot.id)
            if space.phase is not Phase.PROVISIONING:
                return None
            phase = phase_for([x.status for x in space.services])
            if phase is Phase.READY and space.ready_seconds is None:
                # From create to ready, once: a wake later is not the space's time to ready.
                space.ready_seconds = round(took, 3)
            self._settle_generation(s, space, snapshot.generation, ok=True)
            self.set_phase(
                s,
                space,
                phase,
                actor=SYSTEM.name,
                kind=phase.value,
                message="all services are healthy"
                if phase is Phase.READY
                else "some services are not healthy",
            )
        log.info("space %s: %s", snapshot.ref.name, phase)
        return phase

    def _fail(self, snapshot: Snapshot, reason: str, *, service: str | None = None) -> None:
        """Stop what runs (its logs stay readable) and record why the space failed."""
        log.warning("space %s: failed: %s", snapshot.ref.name, reason.splitlines()[0])
        try:
            runtime = self.runtime(snapshot.runtime)
            runtime.sleep(snapshot.ref, [ServiceName(n) for n in self._service_names(snapshot.id)])
        except LaunchbayError as e:
            reason += f"\n(and stopping its services failed: {e.message})"
        with self.store.write() as s:
            space = q.space_for_update(s, snapshot.id)
            if space.phase in (Phase.DELETING, Phase.DELETED):
                return
            for state in space.services:
                if state.name == service:
                    state.status, state.detail = ServiceStatus.FAILED, reason.splitlines()[0]
                elif state.status in (ServiceStatus.PENDING, ServiceStatus.STARTING):
                    state.status, state.detail = (
                        ServiceStatus.STOPPED,
                        "not started: another service failed",
                    )
                elif state.status is not ServiceStatus.COMPLETED:
                    state.status = ServiceStatus.STOPPED
            space.reason = reason
            self.set_phase(s, space, Phase.FAILED, actor=SYSTEM.name, kind="failed", message=reason)
            self._settle_generation(s, space, snapshot.generation, ok=False)

    def _delete_job(self, space_id: int) -> None:
        with self.store.read() as s:
            space = q.space_for_update(s, space_id)
            if space.phase is not Phase.DELETING:
                return
            snapshot = Snapshot.of(space)
        self.runtime(snapshot.runtime).destroy(snapshot.ref)
        now = self.clock()
        with self.store.write() as s:
            space = q.space_for_update(s, space_id)
            space.live_name = None
            space.deleted_at = now
            for service in space.services:
                service.status = ServiceStatus.STOPPED
                service.endpoints = {}
            self.set_phase(
                s,
                space,
                Phase.DELETED,
                actor=SYSTEM.name,
                kind="deleted",
                message="everything of the space was removed",
            )
        self.jobs.forget(space_id)
        log.info("space %s: deleted", snapshot.ref.name)

    def _sleep_job(self, space_id: int, *, actor: str) -> None:
        with self.store.read() as s:
            space = q.space_for_update(s, space_id)
            if space.phase not in (Phase.READY, Phase.DEGRADED):
                return
            snapshot = Snapshot.of(space)
            names = [ServiceName(x.name) for x in space.services]
        self.runtime(snapshot.runtime).sleep(snapshot.ref, names)
        with self.store.write() as s:
            space = q.space_for_update(s, space_id)
            for service in space.services:
                if service.status is not ServiceStatus.COMPLETED:  # a job done stays done
                    service.status = ServiceStatus.STOPPED
                    service.detail = "asleep"
            self.set_phase(
                s,
                space,
                Phase.SLEEPING,
                actor=actor,
                kind="sleeping",
                message="services stopped, state kept",
            )

    def restart_job(self, space_id: int, service_name: str, *, reason: str) -> None:
        """A service that was ready has died: start it again and wait for its health."""
        with self.store.write() as s:
            space = q.space_for_update(s, space_id)
            if space.phase not in (Phase.READY, Phase.DEGRADED):
                return
            state = q.service_state(space, service_name)
            state.restarts += 1
            state.status = ServiceStatus.STARTING
            state.detail = f"restarting: {reason}"
            q.add_event(
                s,
                space,
                actor=SYSTEM.name,
                kind="restart",
                now=self.clock(),
                message=f"service {service_name} stopped ({reason}); restart {state.restarts} "
                f"of {self.settings.max_restarts}",
            )
            snapshot = Snapshot.of(space)
        self.settle_phase(space_id)  # degraded while the service is down
        try:
            template = self.template_of(snapshot)
            runtime = self.runtime(snapshot.runtime)
            service = self.resolve(snapshot, template, runtime)[ServiceName(service_name)]
            runtime.start(snapshot.ref, service)
            seen = self.wait_healthy(snapshot, service, runtime, (self.cancel(space_id),))
            self.set_service(
                snapshot, service.name, ServiceStatus.READY, seen.detail or "running", settle=True
            )
        except Cancelled:
            return
        except LaunchbayError as e:
            self.record(snapshot, kind="restart-failed", message=e.message)
            self.set_service(
                snapshot,
                ServiceName(service_name),
                ServiceStatus.FAILED,
                e.message.splitlines()[0],
                settle=True,
            )

    # -- helpers -------------------------------------------------------------------------

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
                        kind=f"service-{change.status.value}",
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
            kind=phase.value,
            message=", ".join(f"{x.name} {x.status}" for x in space.services),
        )

    def set_phase(
        self, s: Session, space: Space, phase: Phase, *, actor: str, kind: str, message: str
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

    def _settle_generation(self, s: Session, space: Space, generation: int, *, ok: bool) -> None:
        """A provision applied everything up to `generation`; deploys waiting on it end with it."""
        space.observed_generation = max(space.observed_generation, generation)
        for deploy in q.unfinished_deploys(s, space.id):
            if deploy.generation <= generation:
                deploy.result = DeployResult.SUCCEEDED if ok else DeployResult.FAILED
                deploy.detail = "applied by provisioning" if ok else space.reason
                deploy.finished_at = self.clock()

    def record(self, snapshot: Snapshot, *, kind: str, message: str) -> None:
        self._record_by_id(snapshot.id, kind, message)

    def _record_by_id(self, space_id: int, kind: str, message: str) -> None:
        with self.store.write() as s:
            space = q.space_for_update(s, space_id)
            q.add_event(s, space, actor=SYSTEM.name, kind=kind, message=message, now=self.clock())

    def _provision_gave_up(self, job: Claimed, reason: str) -> None:
        """Retries ran out (the runtime stayed unavailable): the space fails, saying why."""
        with self.store.read() as s:
            snapshot = Snapshot.of(q.space_for_update(s, job.space_id))
        self._fail(snapshot, reason)

    def _machine_local(self, runtime: str) -> bool:
        return self.board.runtimes[runtime].machine_local

    def live_for_update(self, s: Session, name: str) -> Space:
        space = q.live_space(s, name)
        if space is None:
            raise NotFound(f"no space named {name!r}")
        return q.space_for_update(s, space.id)

    def _service_names(self, space_id: int) -> list[str]:
        with self.store.read() as s:
            return [x.name for x in q.space_for_update(s, space_id).services]

    def log_tail(self, snapshot: Snapshot, service: str, runtime: Runtime) -> str:
        try:
            return "".join(
                runtime.logs(snapshot.ref, ServiceName(service), tail=20, follow=False)
            ).rstrip()
        except LaunchbayError:
            return ""

    def template_of(self, snapshot: Snapshot) -> Template:
        """The space's template as the space runs it (its Compose profiles, with its params)."""
        return self.catalog.get(snapshot.ref.template).for_space(snapshot.params)

    def runtime(self, name: str) -> Runtime:
        self.board.get(name)  # raises if the runtime is not enabled here
        return self.runtimes[name]

    def _check_runtime(self, template: Template, runtime: str) -> None:
        if runtime not in self.runtimes:
            enabled = ", ".join(sorted(self.runtimes))
            raise Invalid(f"runtime {runtime!r} is not enabled on this server (enabled: {enabled})")
        missing = [n for n, s in template.services.items() if not s.supports(runtime)]
        if missing:
            raise Invalid(
                f"template {template.name!r} cannot run on {runtime}: "
                f"{', '.join(missing)} {'has' if len(missing) == 1 else 'have'} no section for it"
            )

    def cancel(self, space_id: int) -> threading.Event:
        return self.jobs.cancel(space_id)

    def _check_stop(self, stops: Sequence[threading.Event]) -> None:
        if self._stopping.is_set() or any(e.is_set() for e in stops):
            raise Cancelled()

    def _pause(self, seconds: float, stops: Sequence[threading.Event]) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self._check_stop(stops)
            time.sleep(min(0.05, seconds))
        self._check_stop(stops)

    # -- loops ---------------------------------------------------------------------------

    def start(self, loops: Sequence[Loop] = ()) -> None:
        """Start working on jobs, and run each of `loops` in a thread of its own (the
        reconciler and the reaper: `engine.loops.install` makes them)."""
        self.jobs.start()
        for loop in loops:
            thread = threading.Thread(
                target=self._loop,
                args=(loop.name, loop.interval, loop.step, loop.leader_only),
                name=f"launchbay-{loop.name}",
                daemon=True,
            )
            thread.start()
            self._loops.append(thread)

    def stop(self) -> None:
        self._stopping.set()
        for thread in self._loops:
            thread.join(timeout=10)
        self.jobs.stop()
        self.leader.release()
        for name, runtime in self.runtimes.items():
            try:
                runtime.close()
            except LaunchbayError as e:
                log.warning("runtime %s: did not close cleanly: %s", name, e.message)

    def _loop(
        self, name: str, interval: float, step: Callable[[Engine], None], leader_only: bool
    ) -> None:
        """Run `step` every `interval` seconds (while this server is the leader, if
        `leader_only`)."""
        while not self._stopping.is_set():
            try:
                if not leader_only or self.leader.holds():
                    with self.metrics.pass_seconds.labels(name).time():
                        step(self)
            except Exception:  # the loop boundary: log and go on at the next tick
                log.exception("%s pass failed; trying again in %ss", name, interval)
            self._stopping.wait(interval)
