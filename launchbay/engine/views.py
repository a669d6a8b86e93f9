"""What the engine answers with: frozen views of spaces, services, events, jobs and
deploys, copied out of the store's rows inside the transaction that read them.

Nothing above the engine (API, portal) ever holds a row: a view cannot lazy-load, cannot
be changed by accident, and does not change when the row does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from launchbay.domain.jobs import JobKind, JobState
from launchbay.domain.phases import DeployResult, Phase, ServiceStatus
from launchbay.domain.webhooks import DeliveryStatus
from launchbay.store.models import Delivery, Deploy, Event, Job, ServiceState, Space


def _copy(value: dict[str, Any]) -> dict[str, Any]:
    return {k: dict(v) if isinstance(v, dict) else v for k, v in value.items()}


@dataclass(frozen=True)
class ServiceView:
    name: str
    status: ServiceStatus
    version: str
    detail: str
    restarts: int
    endpoints: dict[str, str]
    ready_seconds: float | None
    updated_at: datetime

    @classmethod
    def of(cls, row: ServiceState) -> ServiceView:
        return cls(
            name=row.name,
            status=row.status,
            version=row.version,
            detail=row.detail,
            restarts=row.restarts,
            endpoints=dict(row.endpoints),
            ready_seconds=row.ready_seconds,
            updated_at=row.updated_at,
        )


@dataclass(frozen=True)
class SpaceView:
    id: int
    name: str
    template: str
    runtime: str
    owner: str
    phase: Phase
    reason: str
    params: dict[str, str]
    overrides: dict[str, dict[str, str]]
    created_at: datetime
    updated_at: datetime
    expires_at: datetime
    expired_at: datetime | None
    deleted_at: datetime | None
    generation: int
    observed_generation: int
    ready_seconds: float | None
    origin: str | None
    repository: str
    team: str
    services: tuple[ServiceView, ...]
    # Why the space's runtime cannot be reached now, if it cannot (from the runtime board).
    runtime_unavailable: str | None = None

    @classmethod
    def of(cls, row: Space, *, runtime_unavailable: str | None = None) -> SpaceView:
        return cls(
            id=row.id,
            name=row.name,
            template=row.template,
            runtime=row.runtime,
            owner=row.owner,
            phase=row.phase,
            reason=row.reason,
            params=dict(row.params),
            overrides=_copy(row.overrides),
            created_at=row.created_at,
            updated_at=row.updated_at,
            expires_at=row.expires_at,
            expired_at=row.expired_at,
            deleted_at=row.deleted_at,
            generation=row.generation,
            observed_generation=row.observed_generation,
            ready_seconds=row.ready_seconds,
            origin=row.origin,
            repository=row.repository,
            team=row.team,
            services=tuple(ServiceView.of(x) for x in row.services),
            runtime_unavailable=runtime_unavailable,
        )

    def service(self, name: str) -> ServiceView | None:
        return next((x for x in self.services if x.name == name), None)


@dataclass(frozen=True)
class EventView:
    at: datetime
    actor: str
    kind: str
    message: str
    phase: Phase | None

    @classmethod
    def of(cls, row: Event) -> EventView:
        return cls(at=row.at, actor=row.actor, kind=row.kind, message=row.message, phase=row.phase)


@dataclass(frozen=True)
class JobView:
    id: int
    kind: JobKind
    state: JobState
    attempts: int
    node: str | None
    reason: str
    created_at: datetime
    run_after: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def of(cls, row: Job) -> JobView:
        return cls(
            id=row.id,
            kind=row.kind,
            state=row.state,
            attempts=row.attempts,
            node=row.node,
            reason=row.reason,
            created_at=row.created_at,
            run_after=row.run_after,
            started_at=row.started_at,
            finished_at=row.finished_at,
        )


@dataclass(frozen=True)
class DeployView:
    id: int
    generation: int
    service: str
    from_version: str
    to_version: str
    actor: str
    source: str
    result: DeployResult
    detail: str
    requested_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def of(cls, row: Deploy) -> DeployView:
        return cls(
            id=row.id,
            generation=row.generation,
            service=row.service,
            from_version=row.from_version,
            to_version=row.to_version,
            actor=row.actor,
            source=row.source,
            result=row.result,
            detail=row.detail,
            requested_at=row.requested_at,
            started_at=row.started_at,
            finished_at=row.finished_at,
        )


@dataclass(frozen=True)
class DeliveryView:
    id: str
    event: str
    repository: str
    received_at: datetime
    status: DeliveryStatus
    reason: str
    finished_at: datetime | None

    @classmethod
    def of(cls, row: Delivery) -> DeliveryView:
        return cls(
            id=row.id,
            event=row.event,
            repository=row.repository,
            received_at=row.received_at,
            status=row.status,
            reason=row.reason,
            finished_at=row.finished_at,
        )


@dataclass(frozen=True)
class ChannelView:
    """A user's own notification channel (its key is shown once, never again)."""

    id: int
    kind: str
    url: str
