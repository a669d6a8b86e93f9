"""Create-or-update and per-service deploys: how pipelines move a space between versions.

A change bumps the space's generation and records one deploy per service it alters; a
job then redeploys exactly those services, in dependency order, and leaves the rest
running untouched. A deploy that fails is rolled back to the previous version where the
runtime allows, and the history says what happened.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence

from sqlalchemy.orm import Session

from launchbay.domain.auth import SYSTEM, Action, Actor, require_owner_or_admin
from launchbay.domain.durations import parse_duration
from launchbay.domain.errors import Conflict, Invalid, LaunchbayError, Refused
from launchbay.domain.events import EventKind
from launchbay.domain.jobs import JobKind
from launchbay.domain.names import ServiceName
from launchbay.domain.phases import DeployResult, Phase, ServiceStatus
from launchbay.domain.spec import changed_services, check_overrides, parse_sets, resolve_params
from launchbay.domain.template import Template
from launchbay.engine.engine import Engine, Snapshot
from launchbay.engine.jobs import Cancelled
from launchbay.engine.provisioning import Provisioning
from launchbay.engine.requests import CreateSpace, Requests, facts
from launchbay.engine.views import DeployView, SpaceView
from launchbay.store import queries as q
from launchbay.store.models import Deploy, Space

log = logging.getLogger(__name__)

PENDING, RUNNING, SUCCEEDED, FAILED, SUPERSEDED = (
    DeployResult.PENDING,
    DeployResult.RUNNING,
    DeployResult.SUCCEEDED,
    DeployResult.FAILED,
    DeployResult.SUPERSEDED,
)


class Deploys:
    def __init__(self, engine: Engine, requests: Requests, provisioning: Provisioning) -> None:
        self.engine = engine
        self.requests = requests
        self.provisioning = provisioning
        engine.jobs.handle(JobKind.REDEPLOY, lambda job: self._redeploy_job(job.space_id))

    def apply(self, want: CreateSpace, *, actor: Actor, source: str = "") -> tuple[SpaceView, bool]:
        """Create the space, or change only what differs from `want`, which is the whole wanted
        state (PUT semantics: what it leaves out goes back to the template's default).
        Idempotent: applying the same state twice changes nothing. True if it was created."""
        runtime = self._live_runtime(want.name)
        if runtime is not None:
            updated = self._update(want, runtime, actor=actor, source=source)
            if updated is not None:
                return updated, False
            # Its delete finished between the look and the update: the space is gone.
        try:
            return self.requests.create(want, actor=actor), True
        except Conflict:
            # Created meanwhile by a concurrent apply: update it instead.
            runtime = self._live_runtime(want.name)
            updated = self._update(want, runtime, actor=actor, source=source) if runtime else None
            if updated is None:
                raise
            return updated, False

    def _update(
        self, want: CreateSpace, runtime: str, *, actor: Actor, source: str
    ) -> SpaceView | None:
        """Change only what differs from `want`; None if the space is no longer live."""
        engine = self.engine
        template = engine.catalog.get(want.template)
        limits = self.engine.settings.limits
        params = resolve_params(template, want.params, limits)
        template = template.for_space(params)
        on = engine.runs_on(want.runtime or runtime)
        overrides = parse_sets(want.sets, template, limits, on=on)
        ttl = parse_duration(want.ttl) if want.ttl else None
        with engine.store.write() as s:
            live = q.live_space(s, want.name)
            space = q.space_for_update(s, live.id) if live is not None else None
            if space is None or space.live_name is None:
                return None  # gone, or its delete finished while this waited for the lock
            if want.origin is not None and space.origin != want.origin:
                made = f"by {space.origin}" if space.origin else f"by hand ({space.owner})"
                raise Refused(
                    f"space {space.name!r} was made {made}, not by {want.origin}; it is left alone"
                )
            require_owner_or_admin(actor, facts(space), action="update", does=Action.DEPLOY)
            for what, have, asked in (
                ("template", space.template, want.template),
                ("runtime", space.runtime, want.runtime or space.runtime),
            ):
                if have != asked:
                    raise Conflict(
                        f"space {space.name!r} runs {what} {have!r}, not {asked!r}; delete it first"
                    )
            if space.phase is Phase.DELETING:
                raise Conflict(f"space {space.name!r} is being deleted")
            if ttl is not None:
                # A pipeline that keeps pushing keeps its space, within the template's maximum.
                now = engine.clock()
                space.expires_at = max(
                    space.expires_at, min(now + ttl, space.created_at + template.ttl.max)
                )
            changes = changed_services(
                template,
                old_params=space.params,
                new_params=params,
                old_overrides=space.overrides,
                new_overrides=overrides,
            )
            if changes:
                self._record(
                    s,
                    space,
                    template,
                    changes,
                    params=params,
                    overrides=overrides,
                    actor=actor.name,
                    source=source,
                )
            return engine.view(space)

    def _live_runtime(self, name: str) -> str | None:
        with self.engine.store.read() as s:
            space = q.live_space(s, name)
            return space.runtime if space else None

    def deploy(
        self,
        name: str,
        *,
        service: str,
        version: str | None,
        sets: Mapping[str, str],
        actor: Actor,
        source: str = "",
    ) -> DeployView:
        """Redeploy one service, at `version` and with `sets` (KEY=VALUE of that service)."""
        engine = self.engine
        with engine.store.write() as s:
            space = engine.live_for_update(s, name)
            require_owner_or_admin(actor, facts(space), action="deploy to", does=Action.DEPLOY)
            if space.phase is Phase.DELETING:
                raise Conflict(f"space {name!r} is being deleted")
            template = engine.catalog.get(space.template).for_space(space.params)
            if service not in template.services:
                known = ", ".join(template.services)
                raise Invalid(f"space {name!r} has no service {service!r} (it has {known})")
            wanted = dict(space.overrides.get(service, {}))
            if version is not None:
                if not version.strip():
                    raise Invalid("version must not be empty")
                wanted["version"] = version
            wanted.update(sets)
            overrides = {**space.overrides, service: wanted}
            check_overrides(
                overrides, template, engine.settings.limits, on=engine.runs_on(space.runtime)
            )
            (deploy,) = self._record(
                s,
                space,
                template,
                [ServiceName(service)],
                params=space.params,
                overrides=overrides,
                actor=actor.name,
                source=source,
            )
            return DeployView.of(deploy)

    def wait(self, deploy_id: int, *, timeout: float) -> DeployView:
        """The deploy once it has finished, or as it is when `timeout` runs out."""
        deadline = time.monotonic() + timeout
        while True:
            with self.engine.store.read() as s:
                deploy = DeployView.of(q.deploy_by_id(s, deploy_id))
            if deploy.result.finished or time.monotonic() > deadline:
                return deploy
            time.sleep(0.1)

    # -- the job -------------------------------------------------------------------------

    def _record(
        self,
        s: Session,
        space: Space,
        template: Template,
        services: Sequence[ServiceName],
        *,
        params: dict[str, str],
        overrides: dict[str, dict[str, str]],
        actor: str,
        source: str,
    ) -> list[Deploy]:
        now = self.engine.clock()
        versions = {x.name: x.version for x in space.services}
        previous = space.overrides
        space.params, space.overrides = dict(params), {k: dict(v) for k, v in overrides.items()}
        space.generation += 1
        space.updated_at = now
        recorded = []
        for name in services:
            to_version = overrides.get(name, {}).get("version", template.services[name].version)
            deploy = Deploy(
                space_id=space.id,
                generation=space.generation,
                service=name,
                from_version=versions.get(name, ""),
                to_version=to_version,
                previous=dict(previous.get(name, {})),
                wanted=dict(overrides.get(name, {})),
                actor=actor,
                source=source,
                result=PENDING,
                detail="",
                requested_at=now,
            )
            s.add(deploy)
            recorded.append(deploy)
            q.add_event(
                s,
                space,
                actor=actor,
                kind=EventKind.DEPLOY_REQUESTED,
                now=now,
                message=f"{name}: {deploy.from_version} -> {to_version}"
                + (f" ({source})" if source else ""),
            )
        s.flush()
        self.engine.enqueue(s, space, JobKind.REDEPLOY)
        return recorded

    def _redeploy_job(self, space_id: int) -> None:
        engine = self.engine
        with engine.store.write() as s:
            space = q.space_for_update(s, space_id)
            phase = space.phase
            todo = self._take(s, space)
            if not todo:
                return
            generation = space.generation
            if phase in (Phase.DELETING, Phase.DELETED):
                self._finish(todo, SUPERSEDED, "the space is being deleted")
                return
            if phase is Phase.SLEEPING:
                self._finish(
                    todo, SUCCEEDED, "recorded; the space is asleep and runs it when woken"
                )
                space.observed_generation = generation
                return
            if phase in (Phase.FAILED, Phase.PENDING, Phase.PROVISIONING):
                # A whole provision applies everything; it settles these deploys when done.
                engine.set_phase(
                    s,
                    space,
                    Phase.PROVISIONING,
                    actor=SYSTEM.name,
                    kind=EventKind.PROVISIONING,
                    message="provisioning again with the new versions",
                )
                reprovision = True
            else:
                reprovision = False
                now = engine.clock()
                for deploy in todo:
                    deploy.result, deploy.started_at = RUNNING, now
        if reprovision:
            # Services already running at their old versions would be adopted as they are.
            snapshot = self._snapshot(space_id)
            for deploy in todo:
                engine.runtime(snapshot.runtime).stop(snapshot.ref, ServiceName(deploy.service))
            self.provisioning.provision_job(space_id, actor=SYSTEM.name)
            return
        template = engine.catalog.get(space.template).for_space(space.params)
        order: list[str] = [n for layer in template.dependency_order() for n in layer]
        for deploy in sorted(todo, key=lambda d: order.index(d.service)):
            try:
                self._redeploy_service(space_id, deploy)
            except Cancelled:
                return
        engine.settle_phase(space_id)
        with engine.store.write() as s:
            space = q.space_for_update(s, space_id)
            space.observed_generation = max(space.observed_generation, generation)

    def _take(self, s: Session, space: Space) -> list[Deploy]:
        """The newest unfinished deploy of each service; older ones are superseded."""
        latest: dict[str, Deploy] = {}
        for deploy in q.unfinished_deploys(s, space.id):
            older = latest.get(deploy.service)
            if older is not None:
                older.result, older.detail = SUPERSEDED, f"superseded by deploy #{deploy.id}"
                older.finished_at = self.engine.clock()
            latest[deploy.service] = deploy
        return list(latest.values())

    def _redeploy_service(self, space_id: int, deploy: Deploy) -> None:
        name = ServiceName(deploy.service)
        snapshot = self._snapshot(space_id)
        started = time.monotonic()
        try:
            self._restart(snapshot, name, detail=f"deploying {deploy.to_version}")
        except LaunchbayError as e:
            log.warning(
                "space %s: deploy of %s %s failed: %s",
                snapshot.ref.name,
                name,
                deploy.to_version,
                e.message.splitlines()[0],
            )
            rolled_back = self._roll_back(space_id, deploy)
            self._done(deploy.id, FAILED, e.message + rolled_back, started)
            return
        self._done(deploy.id, SUCCEEDED, f"{name} is at {deploy.to_version}", started)

    def _restart(self, snapshot: Snapshot, name: ServiceName, *, detail: str) -> None:
        engine = self.engine
        runtime = engine.runtime(snapshot.runtime)
        template = engine.template_of(snapshot)
        service = engine.resolve(snapshot, template, runtime)[name]
        engine.set_service(snapshot, name, ServiceStatus.STARTING, detail)
        runtime.stop(snapshot.ref, name)
        runtime.start(snapshot.ref, service)
        seen = self.provisioning.wait_healthy(
            snapshot, service, runtime, (engine.cancel(snapshot.id),)
        )
        engine.record_endpoints(snapshot, {name: service}, runtime)
        engine.set_service(snapshot, name, ServiceStatus.READY, seen.detail or "running")

    def _roll_back(self, space_id: int, deploy: Deploy) -> str:
        """Put the previous overrides back and run them again; says how that went."""
        with self.engine.store.write() as s:
            space = q.space_for_update(s, space_id)
            overrides = {k: dict(v) for k, v in space.overrides.items()}
            if deploy.previous:
                overrides[deploy.service] = dict(deploy.previous)
            else:
                overrides.pop(deploy.service, None)
            space.overrides = overrides
        snapshot = self._snapshot(space_id)
        try:
            self._restart(
                snapshot,
                ServiceName(deploy.service),
                detail=f"rolling back to {deploy.from_version}",
            )
        except LaunchbayError as e:
            self.engine.set_service(
                snapshot,
                ServiceName(deploy.service),
                ServiceStatus.FAILED,
                e.message.splitlines()[0],
            )
            return (
                f"\nrolling back to {deploy.from_version} failed too: {e.message.splitlines()[0]}"
            )
        return f"\nrolled back: {deploy.service} runs {deploy.from_version} again"

    def _snapshot(self, space_id: int) -> Snapshot:
        with self.engine.store.read() as s:
            return Snapshot.of(q.space_for_update(s, space_id))

    def _done(self, deploy_id: int, result: DeployResult, detail: str, started: float) -> None:
        took = time.monotonic() - started
        with self.engine.store.write() as s:
            deploy = q.deploy_by_id(s, deploy_id)
            deploy.result, deploy.detail, deploy.finished_at = result, detail, self.engine.clock()
            space = q.space_for_update(s, deploy.space_id)
            q.add_event(
                s,
                space,
                actor=SYSTEM.name,
                kind=EventKind.of_deploy(result),
                now=self.engine.clock(),
                message=f"{deploy.service} {deploy.to_version}: {result} in {took:.1f}s"
                + (f": {detail.splitlines()[0]}" if result == FAILED else ""),
            )

    def _finish(self, deploys: Sequence[Deploy], result: DeployResult, detail: str) -> None:
        now = self.engine.clock()
        for deploy in deploys:
            deploy.result, deploy.detail, deploy.finished_at = result, detail, now
