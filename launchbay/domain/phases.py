"""The lifecycle of a space and of each of its services."""

from __future__ import annotations

from enum import StrEnum


class Phase(StrEnum):
    PENDING = "pending"
    PROVISIONING = "provisioning"
    READY = "ready"
    DEGRADED = "degraded"
    FAILED = "failed"
    SLEEPING = "sleeping"
    DELETING = "deleting"
    DELETED = "deleted"

    @property
    def is_live(self) -> bool:
        """Holds its name: everything but `deleted`."""
        return self is not Phase.DELETED

    @property
    def is_settled(self) -> bool:
        """No engine work is under way for it."""
        return self in SETTLED


SETTLED = frozenset({Phase.READY, Phase.DEGRADED, Phase.FAILED, Phase.SLEEPING, Phase.DELETED})

# Which phase may follow which. `deleting` may follow anything live: delete always wins.
TRANSITIONS: dict[Phase, frozenset[Phase]] = {
    Phase.PENDING: frozenset({Phase.PROVISIONING, Phase.FAILED}),
    Phase.PROVISIONING: frozenset({Phase.READY, Phase.DEGRADED, Phase.FAILED}),
    Phase.READY: frozenset({Phase.DEGRADED, Phase.SLEEPING, Phase.PROVISIONING, Phase.FAILED}),
    Phase.DEGRADED: frozenset({Phase.READY, Phase.SLEEPING, Phase.PROVISIONING, Phase.FAILED}),
    Phase.FAILED: frozenset({Phase.PROVISIONING}),
    Phase.SLEEPING: frozenset({Phase.PROVISIONING, Phase.FAILED}),
    Phase.DELETING: frozenset({Phase.DELETED}),
    Phase.DELETED: frozenset(),
}


def can_transition(current: Phase, target: Phase) -> bool:
    if target is Phase.DELETING:
        return current is not Phase.DELETED
    return target is current or target in TRANSITIONS[current]


class DeployResult(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SUPERSEDED = "superseded"

    @property
    def finished(self) -> bool:
        return self not in (DeployResult.PENDING, DeployResult.RUNNING)


class ServiceStatus(StrEnum):
    PENDING = "pending"
    STARTING = "starting"
    READY = "ready"
    UNHEALTHY = "unhealthy"
    FAILED = "failed"
    STOPPED = "stopped"
    COMPLETED = "completed"  # a one-shot job that exited 0: done, never restarted

    @property
    def is_up(self) -> bool:
        """Counts as ready in its space: running and healthy, or a job that completed."""
        return self in (ServiceStatus.READY, ServiceStatus.COMPLETED)
