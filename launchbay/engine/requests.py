"""Requests: what a user, a pipeline or a webhook asks of a space.

Each request checks everything (names, template, runtime, parameters, rights), then
writes the wanted state, an event and the job that will make it so, in one transaction,
and answers at once with a view of the space. A request never waits on a runtime; the
workers run the job (`engine.provisioning`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy.orm import Session

from launchbay.domain.auth import (
    Action,
    Actor,
    SpaceFacts,
    parse_repository,
    require_key_allows,
    require_owner_or_admin,
)
from launchbay.domain.durations import format_duration, instant, parse_duration
from launchbay.domain.errors import Conflict, Forbidden, Invalid, Refused
from launchbay.domain.events import EventKind
from launchbay.domain.jobs import JobKind
from launchbay.domain.names import parse_space_name
from launchbay.domain.phases import Phase, ServiceStatus
from launchbay.domain.spec import choose_ttl, extended_expiry, parse_sets, resolve_params
from launchbay.domain.template import Template
from launchbay.engine.engine import Engine
from launchbay.engine.quotas import Quotas
from launchbay.engine.teams import team_for_create
from launchbay.engine.views import SpaceView
from launchbay.store import queries as q
from launchbay.store.models import ServiceState, Space

log = logging.getLogger(__name__)

# A space can be recreated once the engine is done with it.
SETTLED_LIVE = (Phase.READY, Phase.DEGRADED, Phase.FAILED, Phase.SLEEPING)


@dataclass(frozen=True)
class CreateSpace:
    name: str
    template: str
    # None: the first of the server's runtimes that can run the template.
    runtime: str | None = None
    ttl: str | None = None
    params: Mapping[str, str] = field(default_factory=dict)
    sets: Mapping[str, str] = field(default_factory=dict)
    # What makes it, when not a person (`github:owner/repo#12`): recorded on the space.
    origin: str | None = None
    # The repository (`owner/name`) it is a space of; "": none, or the one repository a
    # key limited to repositories names.
    repository: str = ""
    # The team it belongs to; "": the creator's one team (where they are a member or admin).
    team: str = ""


class Requests:
    def __init__(self, engine: Engine, quotas: Quotas | None = None) -> None:
        self.engine = engine
        self.quotas = quotas

    def create(self, request: CreateSpace, *, actor: Actor) -> SpaceView:
        """Validate everything, record the space as `pending` and queue its provisioning.

        Nothing is written unless the whole request is valid. Of two concurrent creates of
        one name exactly one wins; the other gets Conflict.
        """
        engine = self.engine
        name = parse_space_name(request.name)
        template = engine.catalog.get(request.template)
        repository = repository_for(request.repository, actor)
        require_key_allows(
            actor, Action.CREATE, template=template.name, repository=repository, what="create"
        )
        on = self.runtime_for(template, request.runtime)
        if on in engine.settings.admin_only_runtimes and not actor.is_admin:
            raise Forbidden(f"only admins may create spaces on the {on} runtime on this server")
        runtime = engine.runtime(on)
        runtime.check_space(name)
        # Docker down, no cluster access: a clear error now, not a hang later.
        engine.board.require(on)
        params = resolve_params(template, request.params, engine.settings.limits)
        template = template.for_space(params)
        runtime.check_template(template)
        overrides = parse_sets(
            request.sets, template, engine.settings.limits, on=engine.runs_on(on)
        )
        ttl = choose_ttl(template.ttl, request.ttl, minimum=engine.settings.min_ttl)
        now = engine.clock()
        with engine.store.write() as s:
            team = team_for_create(s, actor, request.team)
            if self.quotas is not None:
                self.quotas.admit_create(s, actor, template=template.name)
            space = q.add_space(
                s,
                Space(
                    name=name,
                    live_name=name,
                    template=template.name,
                    runtime=on,
                    owner=actor.name,
                    params=params,
                    overrides=overrides,
                    phase=Phase.PENDING,
                    reason="",
                    created_at=now,
                    updated_at=now,
                    expires_at=now + ttl,
                    node=engine.settings.node if engine.board.runtimes[on].machine_local else None,
                    origin=request.origin,
                    repository=repository,
                    team=team,
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
                kind=EventKind.CREATED,
                now=now,
                phase=Phase.PENDING,
                message=f"created from template {template.name} on {on}, "
                f"TTL {format_duration(ttl)}",
            )
            engine.enqueue(s, space, JobKind.PROVISION, actor=actor.name)
        log.info("space %s: created by %s", name, actor.name)
        return engine.view(space)

    def delete(
        self, name: str, *, actor: Actor, reason: str = "", origin: str | None = None
    ) -> SpaceView:
        """Mark the space `deleting` and queue the teardown. Idempotent: deleting a space
        that is being deleted, or is gone, returns it as it is. With `origin`, only a space
        made by that origin is deleted (a webhook never deletes a space it did not make)."""
        with self.engine.store.write() as s:
            space = q.find_space(s, name)
            if space.phase in (Phase.DELETING, Phase.DELETED):
                return self.engine.view(space)
            if origin is not None and space.origin != origin:
                raise Refused(f"space {name!r} was not made by {origin}; it is left alone")
            require_owner_or_admin(actor, facts(space), action="delete", does=Action.DELETE)
            why = reason or f"deleted by {actor.name}"
            self.engine.set_phase(
                s,
                space,
                Phase.DELETING,
                actor=actor.name,
                kind=EventKind.DELETE_REQUESTED,
                message=why,
            )
            space.reason = why  # what an ended space is listed with
            self.engine.enqueue(s, space, JobKind.DELETE)
        # A job of the space running here stops now; one on another replica at its
        # next heartbeat.
        self.engine.cancel(space.id).set()
        return self.engine.view(space)

    def extend(self, name: str, *, by: str, actor: Actor) -> SpaceView:
        duration = parse_duration(by)
        with self.engine.store.write() as s:
            space = self.engine.live_for_update(s, name)
            self.extend_in(s, space, by=duration, actor=actor)
        return self.engine.view(space)

    def extend_in(
        self, s: Session, space: Space, *, by: timedelta, actor: Actor, via: str = ""
    ) -> None:
        """Extend in the caller's transaction (a notice's link is spent in the same one)."""
        require_owner_or_admin(actor, facts(space), action="extend")
        if space.phase is Phase.DELETING:
            raise Conflict(f"space {space.name!r} is being deleted")
        template = self.engine.catalog.get(space.template)
        now = self.engine.clock()
        space.expires_at = extended_expiry(
            expires_at=space.expires_at,
            created_at=space.created_at,
            by=by,
            policy=template.ttl,
            now=now,
        )
        space.expired_at = None
        space.updated_at = now
        q.add_event(
            s,
            space,
            actor=actor.name,
            kind=EventKind.EXTENDED,
            now=now,
            message=f"TTL extended by {format_duration(by)}"
            + (f" through {via}" if via else "")
            + f"; expires {instant(space.expires_at)}",
        )

    def retry(self, name: str, *, actor: Actor) -> SpaceView:
        """Provision a failed or degraded space again with the same spec: what failed or
        was stopped starts again, what is up is kept."""
        return self._again(name, actor=actor, fresh=False)

    def recreate(self, name: str, *, actor: Actor) -> SpaceView:
        """Remove everything the space runs (its data too) and make it again with the same
        spec, name and expiry."""
        return self._again(name, actor=actor, fresh=True)

    def _again(self, name: str, *, actor: Actor, fresh: bool) -> SpaceView:
        action, done = ("recreate", "recreated") if fresh else ("retry", "retried")
        allowed = SETTLED_LIVE if fresh else (Phase.FAILED, Phase.DEGRADED)
        with self.engine.store.write() as s:
            space = self.engine.live_for_update(s, name)
            require_owner_or_admin(actor, facts(space), action=action)
            if space.phase not in allowed:
                *rest, last = (p.value for p in allowed)
                which = f"{', '.join(rest)} or {last}"
                raise Conflict(f"space {name!r} is {space.phase}; only a {which} space is {done}")
            now = self.engine.clock()
            for state in space.services:
                if fresh or not state.status.is_up:
                    state.status, state.detail, state.updated_at = ServiceStatus.PENDING, "", now
            space.generation += 1
            self.engine.set_phase(
                s,
                space,
                Phase.PROVISIONING,
                actor=actor.name,
                kind=EventKind.requested(action),
                message=f"{action} requested by {actor.name}",
            )
            args = {"actor": actor.name} | ({"fresh": "1"} if fresh else {})
            self.engine.enqueue(s, space, JobKind.PROVISION, **args)
        return self.engine.view(space)

    def sleep(self, name: str, *, actor: Actor) -> SpaceView:
        with self.engine.store.write() as s:
            space = self.engine.live_for_update(s, name)
            require_owner_or_admin(actor, facts(space), action="put to sleep")
            phase = space.phase
            if phase is Phase.SLEEPING:
                return self.engine.view(space)
            if phase not in (Phase.READY, Phase.DEGRADED):
                raise Conflict(
                    f"space {name!r} is {phase}; only a ready or degraded space can sleep"
                )
            self.engine.enqueue(s, space, JobKind.SLEEP, actor=actor.name)
        return self.engine.view(space)

    def wake(self, name: str, *, actor: Actor) -> SpaceView:
        with self.engine.store.write() as s:
            space = self.engine.live_for_update(s, name)
            require_owner_or_admin(actor, facts(space), action="wake")
            phase = space.phase
            if phase in (Phase.READY, Phase.DEGRADED, Phase.PROVISIONING, Phase.PENDING):
                return self.engine.view(space)
            if phase is not Phase.SLEEPING:
                raise Conflict(f"space {name!r} is {phase}; only a sleeping space can be woken")
            self.engine.set_phase(
                s,
                space,
                Phase.PROVISIONING,
                actor=actor.name,
                kind=EventKind.WAKE_REQUESTED,
                message=f"wake requested by {actor.name}",
            )
            self.engine.enqueue(s, space, JobKind.PROVISION, actor=actor.name)
        return self.engine.view(space)

    def runtime_for(self, template: Template, asked: str | None) -> str:
        """The runtime asked for, if it is enabled and can run every service; else the
        first of the server's runtimes that can."""
        engine = self.engine
        if asked is None:
            usable = engine.runtimes_for(template)
            if not usable:
                raise Invalid(
                    f"template {template.name!r} runs on no runtime this server enables "
                    f"({', '.join(sorted(engine.runtimes))}): its services are written for "
                    f"{', '.join(template.sections()) or 'different runtimes each'}"
                )
            return usable[0]
        if asked not in engine.runtimes:
            enabled = ", ".join(sorted(engine.runtimes))
            raise Invalid(f"runtime {asked!r} is not enabled on this server (enabled: {enabled})")
        section = engine.runs_on(asked).section
        missing = [n for n, s in template.services.items() if not s.has(section)]
        if missing:
            raise Invalid(
                f"template {template.name!r} cannot run on {asked}: {', '.join(missing)} "
                f"{'has' if len(missing) == 1 else 'have'} no {section} section"
            )
        return asked


def facts(space: Space) -> SpaceFacts:
    """What the one authorisation rule asks of a space."""
    return SpaceFacts(space.name, space.owner, space.template, space.repository, space.team)


def repository_for(asked: str, actor: Actor) -> str:
    """The repository a new space is of: the one asked for, else the one repository the
    actor's key is limited to, if it names exactly one."""
    if asked:
        return parse_repository(asked)
    limited = actor.key.repositories if actor.key else frozenset()
    return next(iter(limited)) if len(limited) == 1 else ""
