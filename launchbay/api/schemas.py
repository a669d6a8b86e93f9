"""What the API accepts and returns."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

from launchbay.domain.durations import DURATION_PATTERN, format_duration, instant
from launchbay.domain.names import (
    LABEL_PATTERN,
    LETTER_LABEL_PATTERN,
    MAX_SERVICE_NAME,
    MAX_SPACE_NAME,
)
from launchbay.domain.template import RunsOn, Template
from launchbay.engine.views import DeployView, JobView, SpaceView
from launchbay.runtimes import registry

# Every time the API answers: `2026-12-02T08:00:00Z` (no microseconds, no `+00:00`).
Instant = Annotated[datetime, PlainSerializer(instant, return_type=str, when_used="json")]


class ErrorOut(BaseModel):
    """Every error the API answers: one message, written for people."""

    detail: str = Field(description="what went wrong and, where there is one, the fix")


_ERRORS = {
    400: "the Host header is not one this server answers to",
    401: "no token, or one the server does not know",
    403: "the caller may not do this",
    404: "no such thing",
    409: "the request clashes with the current state",
    413: "the request body is over the server's limit",
    422: "the request is malformed or breaks a rule; nothing was changed",
    429: "too many followed logs at once",
    503: "a runtime or the store cannot be reached now; try again later",
}
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut, "description": why} for code, why in _ERRORS.items()
}


def rule(pattern: str, max_length: int) -> dict[str, Any]:
    """A rule the domain checks (with its own messages), shown in the OpenAPI description."""
    return {"pattern": pattern, "maxLength": max_length, "minLength": 1}


SPACE_NAME = rule(LABEL_PATTERN, MAX_SPACE_NAME)
LABEL = rule(LABEL_PATTERN, 63)
SERVICE_NAME = rule(LETTER_LABEL_PATTERN, MAX_SERVICE_NAME)
DURATION = rule(DURATION_PATTERN, 40)
RUNTIME: dict[str, Any] = {"enum": list(registry.NAMES)}


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class SpaceOfIn(Body):
    """Whose a new space is, besides its creator's: the fields creates and applies share."""

    repository: str = Field(
        default="",
        max_length=201,
        description="OWNER/NAME the space is of; a key limited to one repository sets it",
    )
    team: str = Field(
        default="", max_length=63, description="its team; default: the creator's one team"
    )


class CreateSpaceIn(SpaceOfIn):
    name: str = Field(json_schema_extra=SPACE_NAME)
    template: str = Field(json_schema_extra=LABEL)
    runtime: str | None = Field(
        default=None,
        description="the first of the server's runtimes that can run the template if omitted",
        json_schema_extra=RUNTIME,
    )
    ttl: str | None = Field(
        default=None,
        description="e.g. 30m, 2h; the template's default if omitted",
        json_schema_extra=DURATION,
    )
    params: dict[str, str] = {}
    overrides: dict[str, str] = Field(
        default={}, alias="set", description='per-service overrides, e.g. {"api.version": "pr-123"}'
    )


class ApplySpaceIn(SpaceOfIn):
    """The whole wanted state of a space: what is not given goes back to the template's default."""

    template: str = Field(json_schema_extra=LABEL)
    runtime: str | None = Field(
        default=None,
        description="the first of the server's runtimes that can run the template if omitted",
        json_schema_extra=RUNTIME,
    )
    ttl: str | None = Field(
        default=None,
        description="on update, keeps the space at least this long",
        json_schema_extra=DURATION,
    )
    params: dict[str, str] = {}
    overrides: dict[str, str] = Field(default={}, alias="set")
    source: str = Field(default="", max_length=255, description="who or which pipeline asks")


class DeployIn(Body):
    service: str = Field(json_schema_extra=SERVICE_NAME)
    version: str | None = None
    overrides: dict[str, str] = Field(
        default={}, alias="set", description='keys of this service, e.g. {"env.DEBUG": "1"}'
    )
    source: str = Field(default="", max_length=255)


class DeployOut(BaseModel):
    id: int
    service: str
    from_version: str
    to_version: str
    actor: str
    source: str
    result: str
    detail: str
    generation: int
    requested_at: Instant
    started_at: Instant | None
    finished_at: Instant | None
    duration_s: float | None

    @classmethod
    def of(cls, d: DeployView) -> DeployOut:
        duration = (
            (d.finished_at - d.started_at).total_seconds()
            if d.finished_at and d.started_at
            else None
        )
        return cls(
            id=d.id,
            service=d.service,
            from_version=d.from_version,
            to_version=d.to_version,
            actor=d.actor,
            source=d.source,
            result=d.result,
            detail=d.detail,
            generation=d.generation,
            requested_at=d.requested_at,
            started_at=d.started_at,
            finished_at=d.finished_at,
            duration_s=round(duration, 3) if duration is not None else None,
        )


class DeliveryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    event: str
    repository: str
    received_at: Instant
    status: str = Field(description="accepted (work owed), done, failed, ignored or rejected")
    reason: str
    finished_at: Instant | None


class ExtendIn(Body):
    by: str = Field(description="how much longer, e.g. 1h", json_schema_extra=DURATION)


class UserIn(Body):
    name: str = Field(json_schema_extra=LABEL)
    admin: bool = False


class UserOut(BaseModel):
    name: str
    admin: bool
    token: str


class SigninLinkOut(BaseModel):
    url: str
    valid_seconds: int


class ServiceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    name: str
    status: str
    version: str
    detail: str
    restarts: int
    endpoints: dict[str, str]
    ready_seconds: float | None = Field(
        default=None, description="from its last start to its health passing"
    )


class JobOut(BaseModel):
    """Work the engine owes a space, and how it went."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: str = Field(description="provision, delete, sleep, restart, redeploy or reconcile")
    state: str = Field(description="queued, running, done or failed")
    attempts: int
    node: str | None = Field(description="the server that must run it, if one must")
    reason: str = Field(description="why it failed, or why it is being retried")
    created_at: Instant
    run_after: Instant
    started_at: Instant | None
    finished_at: Instant | None


class SpaceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    name: str
    template: str
    runtime: str
    owner: str
    phase: str
    reason: str
    params: dict[str, str]
    overrides: dict[str, dict[str, str]]
    created_at: Instant
    updated_at: Instant
    expires_at: Instant
    expired_at: Instant | None
    deleted_at: Instant | None
    generation: int
    observed_generation: int
    ready_seconds: float | None = Field(
        default=None, description="from the start of its last provisioning to every service ready"
    )
    origin: str | None = Field(
        default=None, description="what made it, when not a person: github:OWNER/REPO#PR"
    )
    repository: str = Field(default="", description="the OWNER/NAME it is a space of, if any")
    team: str = Field(default="", description="the team it belongs to, if any")
    services: list[ServiceOut]
    runtime_unavailable: str | None = Field(
        default=None, description="why the space's runtime cannot be reached now, if it cannot"
    )
    jobs: list[JobOut] = Field(
        default_factory=list,
        description="what is queued and running for the space, then the last jobs that "
        "finished (only when one space is asked for)",
    )

    @classmethod
    def of(cls, space: SpaceView, *, jobs: Sequence[JobView] = ()) -> SpaceOut:
        """The view as the API shows it (the view's fields, by name), with `jobs`."""
        out = cls.model_validate(space)
        out.jobs = [JobOut.model_validate(job) for job in jobs]
        return out


class ChannelIn(Body):
    kind: str = Field(json_schema_extra={"enum": ["slack", "json"]})
    url: str = Field(pattern=r"^https?://[^\s]+$", max_length=2000)


class ChannelOut(BaseModel):
    id: int
    kind: str
    url: str
    secret: str | None = Field(
        default=None, description="a JSON channel's signing key: shown once, when it is added"
    )


class SpaceList(BaseModel):
    items: list[SpaceOut]
    total: int
    next_cursor: str | None


class EventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    at: Instant
    actor: str
    kind: str
    message: str
    phase: str | None


class TemplateServiceOut(BaseModel):
    name: str
    description: str
    version: str
    depends_on: list[str]
    endpoints: list[str]
    health: str | None
    runtimes: list[str]
    binds: dict[str, str] = Field(
        default={}, description="a Compose file's bind mounts: source -> how spaces see it"
    )


class TemplateOut(BaseModel):
    name: str
    description: str
    ttl_default: str
    ttl_max: str
    params: dict[str, dict[str, str]]
    runtimes: list[str] = Field(description="the server's runtimes that can run every service")
    services: list[TemplateServiceOut]
    order: list[list[str]]

    @classmethod
    def of(cls, template: Template, *, runtimes: Sequence[RunsOn]) -> TemplateOut:
        """`runtimes`: the server's; of them, the ones that can run the template are listed."""
        return cls(
            name=template.name,
            description=template.description,
            ttl_default=format_duration(template.ttl.default),
            ttl_max=format_duration(template.ttl.max),
            params={
                n: {"default": p.default, "description": p.description}
                for n, p in template.params.items()
            },
            runtimes=[r.runtime for r in runtimes if r.section in template.sections()],
            services=[
                TemplateServiceOut(
                    name=name,
                    description=s.description,
                    version=s.version,
                    depends_on=s.depends_on,
                    endpoints=[e.name for e in s.endpoints],
                    health=_health(s.health),
                    runtimes=[r.runtime for r in runtimes if s.has(r.section)],
                    binds=s.binds,
                )
                for name, s in template.services.items()
            ],
            order=[list(layer) for layer in template.dependency_order()],
        )


def _health(health: Any) -> str | None:
    if health is None:
        return None
    if health.http:
        return f"http {health.http}"
    return "tcp" if health.tcp else "command " + " ".join(health.command)


class TemplateProblems(BaseModel):
    problems: dict[str, list[str]]


class KeyIn(Body):
    name: str = Field(json_schema_extra=LABEL)
    scopes: list[str] = Field(
        min_length=1, max_length=4, description="read, deploy, spaces or admin"
    )
    expires_in: str = Field(description="its life, e.g. 30d; at most auth.key_max_life")
    templates: list[str] = Field(
        default_factory=list, max_length=100, description="only spaces of these templates"
    )
    repositories: list[str] = Field(
        default_factory=list, max_length=100, description="only spaces of these OWNER/NAMEs"
    )
    user: str | None = Field(default=None, description="another user's key (admins only)")


class KeyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    name: str
    user: str
    scopes: list[str]
    templates: list[str]
    repositories: list[str]
    created_at: Instant
    expires_at: Instant | None
    last_used_at: Instant | None
    current: bool = Field(description="the key this request came with")


class NewKeyOut(KeyOut):
    token: str = Field(description="shown once: the server keeps only its digest")
