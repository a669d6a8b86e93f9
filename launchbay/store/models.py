"""Tables. Times are stored in UTC and always come back timezone-aware."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from launchbay.domain.auth import Role
from launchbay.domain.jobs import JobKind, JobState
from launchbay.domain.notices import NoticeKind
from launchbay.domain.phases import DeployResult, Phase, ServiceStatus
from launchbay.domain.webhooks import DeliveryStatus, PrState


def _enum(kind: type[StrEnum], *, checked: bool = True) -> Enum:
    """A StrEnum stored as its value (`checked`: the database refuses any other; the older
    columns are plain strings in the schema, checked on the way in and out)."""
    return Enum(
        kind,
        native_enum=False,
        create_constraint=checked,
        length=16,
        values_callable=lambda members: [m.value for m in members],
    )


class UtcDateTime(TypeDecorator[datetime]):
    """SQLite drops the zone; this puts UTC back, and refuses naive datetimes on the way in."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: Launchbay stores only timezone-aware UTC times")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UtcDateTime, dict[str, Any]: JSON}


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    is_admin: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime]


class Token(Base):
    """An API key: a user's, named, limited to scopes (and optionally to templates and
    repositories), with an expiry. Revoking one deletes its row."""

    __tablename__ = "tokens"
    __table_args__ = (UniqueConstraint("user_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(63))
    # sha256 of the token: tokens are 256 random bits, so a fast hash is enough.
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[list[str]] = mapped_column(JSON)
    templates: Mapped[list[str]] = mapped_column(JSON, default=list)
    repositories: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime]
    # None only for the admin's first token, which the server writes to its data dir.
    expires_at: Mapped[datetime | None] = mapped_column(default=None)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)
    user: Mapped[User] = relationship(lazy="joined")


class Space(Base):
    __tablename__ = "spaces"
    __table_args__ = (
        Index("ix_spaces_listing", "phase", "id"),
        Index("ix_spaces_expiry", "expires_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(63), index=True)
    # Equal to `name` while the space is live and NULL once deleted: the unique index on it
    # lets exactly one of two concurrent creates of a name win, and frees the name only
    # when the old space is fully gone.
    live_name: Mapped[str | None] = mapped_column(String(63), unique=True)
    template: Mapped[str] = mapped_column(String(63))
    runtime: Mapped[str] = mapped_column(String(16))
    owner: Mapped[str] = mapped_column(String(63), index=True)
    params: Mapped[dict[str, Any]]
    overrides: Mapped[dict[str, Any]]
    phase: Mapped[Phase] = mapped_column(_enum(Phase, checked=False))
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    expired_at: Mapped[datetime | None] = mapped_column(default=None)
    deleted_at: Mapped[datetime | None] = mapped_column(default=None)
    # Bumped by every change of what the space should run; `observed_generation` is the
    # newest generation the engine has finished applying (as Kubernetes objects do), so a
    # pipeline can wait for "my change is done", whatever its result.
    generation: Mapped[int] = mapped_column(default=1, server_default="1")
    observed_generation: Mapped[int] = mapped_column(default=0, server_default="0")
    # The server (node) whose machine runs the space, for runtimes whose resources live on
    # one machine (processes, a local Docker Engine): only that node can act on them, so
    # its jobs are pinned there. NULL: any replica may act.
    node: Mapped[str | None] = mapped_column(String(64), default=None)
    # How long its last provisioning took from start to every service ready.
    ready_seconds: Mapped[float | None] = mapped_column(Float, default=None)
    # What made it, when not a person: `github:owner/repo#12` for a pull request's space.
    # A webhook acts only on the spaces it made.
    origin: Mapped[str | None] = mapped_column(String(255), default=None, index=True)
    # The repository (`owner/name`, lower case) it is a space of, if any: what a key limited
    # to repositories may act on.
    repository: Mapped[str] = mapped_column(String(255), default="", server_default="")
    # The team it belongs to ("": none): its admins manage it too.
    team: Mapped[str] = mapped_column(String(63), default="", server_default="", index=True)

    services: Mapped[list[ServiceState]] = relationship(
        back_populates="space",
        order_by="ServiceState.position",
        lazy="selectin",
        cascade="all, delete-orphan",
    )


class ServiceState(Base):
    __tablename__ = "services"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    space_id: Mapped[int] = mapped_column(ForeignKey("spaces.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(63))
    position: Mapped[int] = mapped_column(default=0)
    status: Mapped[ServiceStatus] = mapped_column(_enum(ServiceStatus, checked=False))
    version: Mapped[str] = mapped_column(String(255))
    detail: Mapped[str] = mapped_column(Text, default="")
    restarts: Mapped[int] = mapped_column(default=0)
    endpoints: Mapped[dict[str, Any]]
    # How long it took from its last start to its health passing.
    ready_seconds: Mapped[float | None] = mapped_column(Float, default=None)
    updated_at: Mapped[datetime]

    space: Mapped[Space] = relationship(back_populates="services")


class Event(Base):
    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    space_id: Mapped[int] = mapped_column(ForeignKey("spaces.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(63))
    kind: Mapped[str] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(Text, default="")
    phase: Mapped[Phase | None] = mapped_column(_enum(Phase, checked=False), default=None)
    # For events that come from a runtime (a cluster's warnings): its id, recorded once.
    external_id: Mapped[str | None] = mapped_column(String(255), default=None, index=True)


class Deploy(Base):
    """One service of a space moved from one version (and settings) to another."""

    __tablename__ = "deploys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    space_id: Mapped[int] = mapped_column(ForeignKey("spaces.id", ondelete="CASCADE"), index=True)
    generation: Mapped[int]
    service: Mapped[str] = mapped_column(String(63))
    from_version: Mapped[str] = mapped_column(String(255))
    to_version: Mapped[str] = mapped_column(String(255))
    # The service's overrides before and after, to roll back to the previous ones.
    previous: Mapped[dict[str, Any]]
    wanted: Mapped[dict[str, Any]]
    actor: Mapped[str] = mapped_column(String(63))
    source: Mapped[str] = mapped_column(String(255), default="")
    result: Mapped[DeployResult] = mapped_column(_enum(DeployResult, checked=False))
    detail: Mapped[str] = mapped_column(Text, default="")
    requested_at: Mapped[datetime]
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)


class Delivery(Base):
    """A webhook delivery: what it asked for and what became of it. An accepted one is work
    owed (a pull request's state to converge, a push to redeploy) until it is done or
    failed; GitHub's Redeliver of a failed, refused or ignored one is processed anew."""

    __tablename__ = "deliveries"
    __table_args__ = (Index("ix_deliveries_work", "status", "event"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    event: Mapped[str] = mapped_column(String(64))
    repository: Mapped[str] = mapped_column(String(255), default="")
    received_at: Mapped[datetime]
    status: Mapped[DeliveryStatus] = mapped_column(_enum(DeliveryStatus, checked=False))
    reason: Mapped[str] = mapped_column(Text, default="")
    # A pull request delivery: the state it recorded is this generation of that PR.
    pull_request_id: Mapped[int | None] = mapped_column(
        ForeignKey("pull_requests.id", ondelete="SET NULL"), default=None, index=True
    )
    generation: Mapped[int | None] = mapped_column(default=None)
    # A push delivery: what to redeploy (its own work, claimed under a lease).
    work: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True), default=None)
    lease_owner: Mapped[str | None] = mapped_column(String(128), default=None)
    lease_until: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)


class PullRequest(Base):
    """A pull request's wanted state as its newest delivery told it, and how far its space
    has been brought to it: one row is one job, done when `applied` reaches `generation`."""

    __tablename__ = "pull_requests"
    __table_args__ = (
        UniqueConstraint("repository", "number"),
        Index("ix_pull_requests_work", "applied", "generation"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    repository: Mapped[str] = mapped_column(String(255))  # lower case
    number: Mapped[int]
    state: Mapped[PrState] = mapped_column(_enum(PrState, checked=False))
    head_sha: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime]
    # The action of the delivery that told this state (ties within one second).
    action: Mapped[str] = mapped_column(String(64), default="", server_default="")
    space: Mapped[str] = mapped_column(String(63))
    generation: Mapped[int] = mapped_column(default=1, server_default="1")
    applied: Mapped[int] = mapped_column(default=0, server_default="0")
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    run_after: Mapped[datetime | None] = mapped_column(default=None)
    lease_owner: Mapped[str | None] = mapped_column(String(128), default=None)
    lease_until: Mapped[datetime | None] = mapped_column(default=None)
    # Why its last convergence failed or waits, if it did.
    reason: Mapped[str] = mapped_column(Text, default="", server_default="")
    # What the pull request was last told of its space (SpaceReport.key), and what GitHub
    # gave back for the next report: its deployment at the head commit, its comment.
    reported: Mapped[str] = mapped_column(String(160), default="", server_default="")
    report_after: Mapped[datetime | None] = mapped_column(default=None)
    deployment_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    deployment_sha: Mapped[str] = mapped_column(String(64), default="", server_default="")
    comment_id: Mapped[int | None] = mapped_column(BigInteger, default=None)


class Job(Base):
    """Work owed to a space: queued, claimed by one worker under a lease, done or failed."""

    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_claim", "state", "run_after"),
        Index("ix_jobs_space", "space_id", "state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    space_id: Mapped[int] = mapped_column(ForeignKey("spaces.id", ondelete="CASCADE"))
    kind: Mapped[JobKind] = mapped_column(_enum(JobKind))
    # The job's arguments (a service to restart and why; who asked).
    args: Mapped[dict[str, Any]]
    state: Mapped[JobState] = mapped_column(_enum(JobState))
    # Only the worker of this node may run it (copied from the space); NULL: any.
    node: Mapped[str | None] = mapped_column(String(64), default=None)
    attempts: Mapped[int] = mapped_column(default=0)
    run_after: Mapped[datetime]
    # "<node>/<boot>" of the worker running it, and until when its claim holds unless renewed.
    owner: Mapped[str | None] = mapped_column(String(128), default=None)
    lease_until: Mapped[datetime | None] = mapped_column(default=None)
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)


class Notice(Base):
    """A notice owed to the notification channels (a warning before expiry; ready, failed,
    deleted), recorded once per space and key in the transaction of what it tells."""

    __tablename__ = "notices"
    __table_args__ = (
        UniqueConstraint("space_id", "key"),
        Index("ix_notices_owed", "sent_at", "next_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    space_id: Mapped[int] = mapped_column(ForeignKey("spaces.id", ondelete="CASCADE"))
    kind: Mapped[NoticeKind] = mapped_column(_enum(NoticeKind))
    key: Mapped[str] = mapped_column(String(128))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    # The channels (by URL) it reached; the others are tried again at `next_at`.
    reached: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    attempts: Mapped[int] = mapped_column(default=0)
    next_at: Mapped[datetime]
    sent_at: Mapped[datetime | None] = mapped_column(default=None)
    error: Mapped[str] = mapped_column(Text, default="")


class UserChannel(Base):
    """A channel a user added for notices of their own spaces."""

    __tablename__ = "user_channels"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    url: Mapped[str] = mapped_column(Text)
    secret: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[datetime]


class ExtendLink(Base):
    """A one-click extension sent in a notice: good once, until the expiry it was sent for."""

    __tablename__ = "extend_links"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of the token
    space_id: Mapped[int] = mapped_column(ForeignKey("spaces.id", ondelete="CASCADE"), index=True)
    by_seconds: Mapped[int]
    valid_until: Mapped[datetime]
    used_at: Mapped[datetime | None] = mapped_column(default=None)


class Installation(Base):
    """This installation's id (one row): carried by everything its runtimes make, so that
    servers sharing a Docker Engine or a cluster each touch only their own."""

    __tablename__ = "installation"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    installation: Mapped[str] = mapped_column(String(16), unique=True)
    created_at: Mapped[datetime]


class SigninLink(Base):
    """A one-time portal sign-in link: good once, for a minute."""

    __tablename__ = "signin_links"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of the token
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    valid_until: Mapped[datetime]
    used_at: Mapped[datetime | None] = mapped_column(default=None)


class AuditRecord(Base):
    """One change asked of the server, as it was answered: who (a user and the credential:
    a key, a portal session, a pull request), what, to what, from where, and the outcome."""

    __tablename__ = "audit"
    __table_args__ = (Index("ix_audit_actor_id", "actor", "id"), Index("ix_audit_at", "at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(63))
    credential: Mapped[str] = mapped_column(String(160))
    via: Mapped[str] = mapped_column(String(16))  # api, portal, webhook
    action: Mapped[str] = mapped_column(String(63))
    target: Mapped[str] = mapped_column(String(255))
    address: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16))
    status: Mapped[int] = mapped_column(Integer)


class Quota(Base):
    """A quota set by an admin for one user (`subject` "user"); None: the server's default.
    The number of spaces a user may have at once, counted over their live spaces."""

    __tablename__ = "quotas"

    subject: Mapped[str] = mapped_column(String(8), primary_key=True)
    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    spaces: Mapped[int | None] = mapped_column(Integer, default=None)
    exempt: Mapped[bool] = mapped_column(default=False)
    updated_at: Mapped[datetime]


class Team(Base):
    __tablename__ = "teams"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    created_at: Mapped[datetime]


class Membership(Base):
    __tablename__ = "memberships"

    team_id: Mapped[int] = mapped_column(
        ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    role: Mapped[Role] = mapped_column(_enum(Role))
    team: Mapped[Team] = relationship(lazy="joined")
    user: Mapped[User] = relationship(lazy="joined")
