"""The jobs that bring a space's services up, put them to sleep, restart one that died
and tear everything down: what the workers run for a space, one job at a time.

Each job reads a snapshot of its space, works on the runtime with no session held, and
writes what happened through the engine's recorders (`Engine.set_services`,
`Engine.set_phase`), so that every change is an event and the phase follows the services.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from datetime import timedelta

from launchbay.domain.auth import SYSTEM
from launchbay.domain.durations import format_duration
from launchbay.domain.errors import Conflict, LaunchbayError, TemporaryError
from launchbay.domain.events import EventKind
from launchbay.domain.jobs import JobKind
from launchbay.domain.logs import excerpt
from launchbay.domain.names import ServiceName
from launchbay.domain.phases import Phase, ServiceStatus
from launchbay.domain.plan import Observed, phase_for
from launchbay.domain.spec import ResolvedService
from launchbay.domain.template import Template
from launchbay.engine.engine import Engine, ServiceChange, Snapshot
from launchbay.engine.jobs import Cancelled, Claimed
from launchbay.runtimes.base import Runtime, ServiceFailed
from launchbay.store import queries as q

log = logging.getLogger(__name__)


def _is_up(service: ResolvedService, seen: Observed) -> bool:
    """Up by the runtime's account, as the runtime that started it reports (Compose's own
    rule): a job that completed, a service whose own health check passed, one running that
    has no check. A template `health:` is an extra gate, applied after."""
    if seen.completed:
        return True
    if service.spec.health is not None or not seen.running:
        return False
    return seen.healthy is not False


class _DependencyFailed(Exception):
    pass


class Provisioning:
    """The space jobs: provision (also wake), sleep, restart and delete."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        engine.jobs.handle(
            JobKind.PROVISION,
            lambda job: self.provision_job(
                job.space_id,
                actor=job.args.get("actor", SYSTEM.name),
                fresh=job.args.get("fresh") == "1",
            ),
            give_up=self._provision_gave_up,
        )
        engine.jobs.handle(JobKind.DELETE, lambda job: self._delete_job(job.space_id))
        engine.jobs.handle(
            JobKind.SLEEP, lambda job: self._sleep_job(job.space_id, actor=job.args["actor"])
        )
        engine.jobs.handle(
            JobKind.RESTART,
            lambda job: self.restart_job(
                job.space_id,
                job.args["service"],
                reason=job.args["reason"],
                retried=job.attempts > 1,
            ),
            give_up=self._restart_gave_up,
        )

    def provision_job(self, space_id: int, *, actor: str, fresh: bool = False) -> None:
        """Bring every service up in dependency order; `fresh`: first remove everything
        the space ran (a recreate)."""
        with self.engine.store.write() as s:
            space = q.space_for_update(s, space_id)
            if space.phase not in (Phase.PENDING, Phase.PROVISIONING):
                return
            self.engine.set_phase(
                s,
                space,
                Phase.PROVISIONING,
                actor=actor,
                kind=EventKind.PROVISIONING,
                message="starting services in dependency order",
            )
            snapshot = Snapshot.of(space)
        cancel = self.engine.cancel(space_id)
        started = time.monotonic()
        try:
            template = self.engine.template_of(snapshot)
            runtime = self.engine.runtime(snapshot.runtime)
            if fresh:
                runtime.destroy(snapshot.ref)
                self.engine.record(
                    snapshot, kind=EventKind.RECREATING, message="removed what it ran"
                )
            services = self.engine.resolve(snapshot, template, runtime)
            self.engine.record_endpoints(snapshot, services, runtime)
            if runtime.starts_together(template):
                self._bring_up_together(snapshot, template, services, runtime, cancel)
            else:
                self._bring_up(snapshot, template, services, runtime, cancel)
            # What the runtime made while starting (ports it chose, a chart's Ingress hosts)
            # is known only now.
            self.engine.record_endpoints(snapshot, services, runtime)
        except ServiceFailed as e:
            self._fail(snapshot, e.message, service=e.service)
        except (TemporaryError, Conflict):
            raise  # the job wrapper retries it; provisioning again adopts what runs
        except LaunchbayError as e:
            self._fail(snapshot, e.message)
        else:
            took = time.monotonic() - started
            if self._finish_provision(snapshot, took) is Phase.READY:
                self.engine.metrics.space_ready_seconds.labels(snapshot.ref.template).observe(took)

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
        self.engine.set_services(
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
            self.engine.set_services(snapshot, [self._up_change(snapshot, service, seen, started)])

        runtime.start_all(snapshot.ref, template, starting, snapshot.params, progress)
        self.engine.check_stop((cancel,))
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
        self.engine.set_services(snapshot, changes)

    def _service_up(
        self, snapshot: Snapshot, service: ResolvedService, seen: Observed, started: float
    ) -> None:
        self.engine.set_services(snapshot, [self._up_change(snapshot, service, seen, started)])

    def _up_change(
        self, snapshot: Snapshot, service: ResolvedService, seen: Observed, started: float
    ) -> ServiceChange:
        """A service is up (a job: completed), `started` seconds (monotonic) ago; counted."""
        took = time.monotonic() - started
        status = ServiceStatus.COMPLETED if seen.completed else ServiceStatus.READY
        self.engine.metrics.service_ready_seconds.labels(
            snapshot.ref.template, service.name
        ).observe(took)
        return ServiceChange(service.name, status, seen.detail or "running", took)

    def _completed(self, space_id: int) -> list[str]:
        with self.engine.store.read() as s:
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
        self.engine.check_stop(stops)
        seen = runtime.probe(snapshot.ref, service)
        if seen.completed:  # a job that already ran: not run again
            self.engine.set_service(snapshot, service.name, ServiceStatus.COMPLETED, seen.detail)
            return
        if seen.running and seen.healthy is not False:
            self.engine.set_service(
                snapshot, service.name, ServiceStatus.READY, seen.detail or "running"
            )
            return
        self.engine.set_service(
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
        said = ""
        while True:
            self.engine.check_stop(stops)
            seen = runtime.probe(snapshot.ref, service)
            if seen.completed:
                return seen
            if seen.detail != said and not seen.healthy:
                # The probe's last answer, for `--wait` and the portal while it waits.
                said = seen.detail
                self.engine.set_service(snapshot, service.name, ServiceStatus.STARTING, said[:500])
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
            self.engine.pause(min(interval, max(deadline - time.monotonic(), 0.05)), stops)

    def _finish_provision(self, snapshot: Snapshot, took: float) -> Phase | None:
        """Ready or degraded, as the services are; None if the space moved on meanwhile."""
        with self.engine.store.write() as s:
            space = q.space_for_update(s, snapshot.id)
            if space.phase is not Phase.PROVISIONING:
                return None
            phase = phase_for([x.status for x in space.services])
            if phase is Phase.READY and space.ready_seconds is None:
                # From create to ready, once: a wake later is not the space's time to ready.
                space.ready_seconds = round(took, 3)
            self.engine.settle_generation(s, space, snapshot.generation, ok=True)
            self.engine.set_phase(
                s,
                space,
                phase,
                actor=SYSTEM.name,
                kind=EventKind.of_phase(phase),
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
            runtime = self.engine.runtime(snapshot.runtime)
            runtime.sleep(snapshot.ref, [ServiceName(n) for n in self._service_names(snapshot.id)])
        except LaunchbayError as e:
            reason += f"\n(and stopping its services failed: {e.message})"
        with self.engine.store.write() as s:
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
            self.engine.set_phase(
                s, space, Phase.FAILED, actor=SYSTEM.name, kind=EventKind.FAILED, message=reason
            )
            self.engine.settle_generation(s, space, snapshot.generation, ok=False)

    def _delete_job(self, space_id: int) -> None:
        with self.engine.store.read() as s:
            space = q.space_for_update(s, space_id)
            if space.phase is not Phase.DELETING:
                return
            snapshot = Snapshot.of(space)
        self.engine.runtime(snapshot.runtime).destroy(snapshot.ref)
        now = self.engine.clock()
        with self.engine.store.write() as s:
            space = q.space_for_update(s, space_id)
            space.live_name = None
            space.deleted_at = now
            for service in space.services:
                service.status, service.detail = ServiceStatus.STOPPED, "removed"
                service.endpoints = {}
            self.engine.set_phase(
                s,
                space,
                Phase.DELETED,
                actor=SYSTEM.name,
                kind=EventKind.DELETED,
                message="everything of the space was removed",
            )
        self.engine.jobs.forget(space_id)
        log.info("space %s: deleted", snapshot.ref.name)

    def _sleep_job(self, space_id: int, *, actor: str) -> None:
        with self.engine.store.read() as s:
            space = q.space_for_update(s, space_id)
            if space.phase not in (Phase.READY, Phase.DEGRADED):
                return
            snapshot = Snapshot.of(space)
            names = [ServiceName(x.name) for x in space.services]
        self.engine.runtime(snapshot.runtime).sleep(snapshot.ref, names)
        with self.engine.store.write() as s:
            space = q.space_for_update(s, space_id)
            for service in space.services:
                if service.status is not ServiceStatus.COMPLETED:  # a job done stays done
                    service.status = ServiceStatus.STOPPED
                    service.detail = "asleep"
            self.engine.set_phase(
                s,
                space,
                Phase.SLEEPING,
                actor=actor,
                kind=EventKind.SLEEPING,
                message="services stopped, state kept",
            )

    def restart_job(
        self, space_id: int, service_name: str, *, reason: str, retried: bool = False
    ) -> None:
        """A service that was ready has died: start it again and wait for its health."""
        with self.engine.store.write() as s:
            space = q.space_for_update(s, space_id)
            if space.phase not in (Phase.READY, Phase.DEGRADED):
                return
            state = q.service_state(space, service_name)
            if not retried:  # a retried restart (the runtime was out) is the same restart
                state.restarts += 1
                state.status = ServiceStatus.STARTING
                state.detail = f"restarting: {reason}"
                q.add_event(
                    s,
                    space,
                    actor=SYSTEM.name,
                    kind=EventKind.RESTART,
                    now=self.engine.clock(),
                    message=f"service {service_name} stopped ({reason}); restart "
                    f"{state.restarts} of {self.engine.settings.max_restarts}",
                )
            snapshot = Snapshot.of(space)
        self.engine.settle_phase(space_id)  # degraded while the service is down
        try:
            template = self.engine.template_of(snapshot)
            runtime = self.engine.runtime(snapshot.runtime)
            service = self.engine.resolve(snapshot, template, runtime)[ServiceName(service_name)]
            runtime.start(snapshot.ref, service)
            seen = self.wait_healthy(snapshot, service, runtime, (self.engine.cancel(space_id),))
            self.engine.set_service(
                snapshot, service.name, ServiceStatus.READY, seen.detail or "running", settle=True
            )
        except Cancelled:
            return
        except (TemporaryError, Conflict):
            raise  # the runtime is out for now, not the service: the job is retried
        except LaunchbayError as e:
            self.engine.record(snapshot, kind=EventKind.RESTART_FAILED, message=e.message)
            self.engine.set_service(
                snapshot,
                ServiceName(service_name),
                ServiceStatus.FAILED,
                e.message.splitlines()[0],
                settle=True,
            )

    def _restart_gave_up(self, job: Claimed, reason: str) -> None:
        """Retries ran out (the runtime stayed out): the service fails, saying why, so that
        it is not left starting."""
        with self.engine.store.read() as s:
            snapshot = Snapshot.of(q.space_for_update(s, job.space_id))
        service = ServiceName(str(job.args["service"]))
        self.engine.record(snapshot, kind=EventKind.RESTART_FAILED, message=reason)
        self.engine.set_service(
            snapshot, service, ServiceStatus.FAILED, reason.splitlines()[0], settle=True
        )

    def log_tail(self, snapshot: Snapshot, service: str, runtime: Runtime) -> str:
        """What its log says of why it failed (`domain.logs.excerpt` of its last lines)."""
        try:
            text = "".join(runtime.logs(snapshot.ref, ServiceName(service), tail=500, follow=False))
        except LaunchbayError:
            return ""
        return excerpt(text)

    def _provision_gave_up(self, job: Claimed, reason: str) -> None:
        """Retries ran out (the runtime stayed unavailable): the space fails, saying why."""
        with self.engine.store.read() as s:
            snapshot = Snapshot.of(q.space_for_update(s, job.space_id))
        self._fail(snapshot, reason)

    def _service_names(self, space_id: int) -> list[str]:
        with self.engine.store.read() as s:
            return [x.name for x in q.space_for_update(s, space_id).services]
