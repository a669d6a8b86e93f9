"""What a line of a space's timeline is about: one enum, so that a kind is never a string
made up at the place that records it."""

from __future__ import annotations

from enum import StrEnum

from launchbay.domain.phases import DeployResult, Phase, ServiceStatus


class EventKind(StrEnum):
    # The space's phase changed to this one (`EventKind.of_phase`).
    PENDING = "pending"
    PROVISIONING = "provisioning"
    READY = "ready"
    DEGRADED = "degraded"
    FAILED = "failed"
    SLEEPING = "sleeping"
    DELETING = "deleting"
    DELETED = "deleted"
    # Somebody asked for something.
    CREATED = "created"
    DELETE_REQUESTED = "delete-requested"
    WAKE_REQUESTED = "wake-requested"
    RETRY_REQUESTED = "retry-requested"
    RECREATE_REQUESTED = "recreate-requested"
    DEPLOY_REQUESTED = "deploy-requested"
    EXTENDED = "extended"
    # What the engine did or saw.
    RECREATING = "recreating"
    RESTART = "restart"
    RESTART_FAILED = "restart-failed"
    WARNING = "warning"
    EXPIRED = "expired"
    RETRY = "retry"
    JOB_FAILED = "job-failed"
    # A service's status changed to this one (`EventKind.of_service`).
    SERVICE_PENDING = "service-pending"
    SERVICE_STARTING = "service-starting"
    SERVICE_READY = "service-ready"
    SERVICE_UNHEALTHY = "service-unhealthy"
    SERVICE_FAILED = "service-failed"
    SERVICE_STOPPED = "service-stopped"
    SERVICE_COMPLETED = "service-completed"
    # A deploy ended (`EventKind.of_deploy`).
    DEPLOY_PENDING = "deploy-pending"
    DEPLOY_RUNNING = "deploy-running"
    DEPLOY_SUCCEEDED = "deploy-succeeded"
    DEPLOY_FAILED = "deploy-failed"
    DEPLOY_SUPERSEDED = "deploy-superseded"

    @classmethod
    def of_phase(cls, phase: Phase) -> EventKind:
        return cls(phase.value)

    @classmethod
    def of_service(cls, status: ServiceStatus) -> EventKind:
        return cls(f"service-{status.value}")

    @classmethod
    def of_deploy(cls, result: DeployResult) -> EventKind:
        return cls(f"deploy-{result.value}")

    @classmethod
    def requested(cls, action: str) -> EventKind:
        """`retry` or `recreate` asked for."""
        return cls(f"{action}-requested")
