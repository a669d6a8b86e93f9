"""Queries and small writes. None of them commits: the caller's `store.write()` does."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from launchbay.domain.errors import Conflict, NotFound
from launchbay.domain.events import EventKind
from launchbay.domain.phases import Phase
from launchbay.store.models import (
    Deploy,
    Event,
    Installation,
    ServiceState,
    Space,
    Token,
    User,
)


def add_user(session: Session, *, name: str, is_admin: bool, now: datetime) -> User:
    if session.scalar(select(User).where(User.name == name)) is not None:
        raise Conflict(f"user {name!r} already exists")
    user = User(name=name, is_admin=is_admin, created_at=now)
    session.add(user)
    _flush_or_conflict(session, f"user {name!r} already exists")
    return user


def add_token(
    session: Session,
    *,
    user: User,
    digest: str,
    now: datetime,
    name: str,
    scopes: Sequence[str],
    expires_at: datetime | None,
    templates: Sequence[str] = (),
    repositories: Sequence[str] = (),
) -> Token:
    if token_named(session, user, name) is not None:
        raise Conflict(f"{user.name} has a key named {name!r} already")
    token = Token(
        user_id=user.id,
        name=name,
        digest=digest,
        scopes=sorted(scopes),
        templates=sorted(templates),
        repositories=sorted(repositories),
        created_at=now,
        expires_at=expires_at,
    )
    session.add(token)
    _flush_or_conflict(session, f"{user.name} has a key named {name!r} already")
    return token


def token_by_digest(session: Session, digest: str) -> Token | None:
    return session.scalar(select(Token).where(Token.digest == digest))


def user_by_token(session: Session, digest: str) -> User | None:
    token = token_by_digest(session, digest)
    return token.user if token else None


def token_named(session: Session, user: User, name: str) -> Token | None:
    return session.scalar(select(Token).where(Token.user_id == user.id, Token.name == name))


def tokens_of(session: Session, user: User) -> Sequence[Token]:
    return session.scalars(select(Token).where(Token.user_id == user.id).order_by(Token.name)).all()


def user_by_name(session: Session, name: str) -> User | None:
    return session.scalar(select(User).where(User.name == name))


def count_users(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(User)) or 0


def live_space(session: Session, name: str) -> Space | None:
    return session.scalar(select(Space).where(Space.live_name == name))


def space_of_origin(session: Session, name: str, origin: str) -> Space | None:
    """The newest space of that name made by `origin`, live or deleted."""
    return session.scalar(
        select(Space)
        .where(Space.name == name, Space.origin == origin)
        .order_by(Space.id.desc())
        .limit(1)
    )


def space_for_update(session: Session, space_id: int) -> Space:
    """The space's row, locked (on PostgreSQL) and read afresh: a row this session read
    before the lock (a look, then the update) would otherwise keep the values it had."""
    space = session.get(
        Space, space_id, with_for_update=not _is_sqlite(session), populate_existing=True
    )
    if space is None:
        raise NotFound(f"space #{space_id} is gone")
    return space


def find_space(session: Session, name: str) -> Space:
    """The live space of that name, or else the newest deleted one (its history)."""
    space = live_space(session, name) or session.scalar(
        select(Space).where(Space.name == name).order_by(Space.id.desc()).limit(1)
    )
    if space is None:
        raise NotFound(f"no space named {name!r}")
    return space


def add_space(session: Session, space: Space) -> Space:
    if live_space(session, space.name) is not None:
        raise Conflict(f"a space named {space.name!r} already exists")
    session.add(space)
    _flush_or_conflict(session, f"a space named {space.name!r} already exists")
    return space


def count_spaces(session: Session) -> int:
    """All spaces ever recorded, deleted ones included."""
    return session.scalar(select(func.count()).select_from(Space)) or 0


def live_spaces(session: Session) -> Sequence[Space]:
    return session.scalars(
        select(Space).where(Space.live_name.is_not(None)).order_by(Space.id)
    ).all()


def expired_spaces(session: Session, *, now: datetime) -> Sequence[Space]:
    return session.scalars(
        select(Space)
        .where(Space.live_name.is_not(None), Space.expires_at <= now)
        .where(Space.phase != Phase.DELETING.value)
        .order_by(Space.expires_at)
    ).all()


def ready_history(session: Session, template: str, *, limit: int = 20) -> list[float]:
    """Time to ready of the newest spaces of a template that got ready, newest first."""
    return [
        seconds
        for seconds in session.scalars(
            select(Space.ready_seconds)
            .where(Space.template == template, Space.ready_seconds.is_not(None))
            .order_by(Space.id.desc())
            .limit(limit)
        )
        if seconds is not None
    ]


def overdue_seconds(session: Session, *, now: datetime) -> list[float]:
    """For each live space past its expiry, by how many seconds."""
    expiries = session.scalars(
        select(Space.expires_at).where(Space.live_name.is_not(None), Space.expires_at <= now)
    )
    return [(now - expiry).total_seconds() for expiry in expiries]


@dataclass(frozen=True)
class SpaceFilter:
    owner: str | None = None
    phase: str | None = None
    template: str | None = None
    runtime: str | None = None
    search: str | None = None
    include_deleted: bool = False
    # Only the spaces that ended (were deleted) since then.
    ended_since: datetime | None = None


def _filtered(where: SpaceFilter) -> Select[Any]:
    query = select(Space)
    if where.ended_since is not None:
        query = query.where(Space.live_name.is_(None), Space.deleted_at >= where.ended_since)
    elif not where.include_deleted and where.phase != Phase.DELETED.value:
        query = query.where(Space.live_name.is_not(None))
    for column, value in (
        (Space.owner, where.owner),
        (Space.phase, where.phase),
        (Space.template, where.template),
        (Space.runtime, where.runtime),
    ):
        if value:
            query = query.where(column == value)
    if where.search:
        query = query.where(Space.name.contains(where.search, autoescape=True))
    return query


def list_spaces(
    session: Session, where: SpaceFilter, *, limit: int, before_id: int | None
) -> tuple[Sequence[Space], int]:
    """A page of spaces, newest first (keyset paging on id), and the total that match."""
    query = _filtered(where)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    if before_id is not None:
        query = query.where(Space.id < before_id)
    items = session.scalars(query.order_by(Space.id.desc()).limit(limit)).all()
    return items, total


def add_event(
    session: Session,
    space: Space,
    *,
    actor: str,
    kind: EventKind,
    message: str,
    now: datetime,
    phase: Phase | None = None,
    external_id: str | None = None,
) -> None:
    session.add(
        Event(
            space_id=space.id,
            at=now,
            actor=actor,
            kind=kind,
            message=message,
            phase=phase.value if phase else None,
            external_id=external_id,
        )
    )


def external_event_ids(session: Session, space: Space, ids: Sequence[str]) -> set[str]:
    """Which of these runtime event ids the space's timeline has already."""
    rows = session.scalars(
        select(Event.external_id).where(Event.space_id == space.id, Event.external_id.in_(ids))
    )
    return {row for row in rows if row}


def events(session: Session, space: Space, *, limit: int) -> Sequence[Event]:
    return session.scalars(
        select(Event).where(Event.space_id == space.id).order_by(Event.id.desc()).limit(limit)
    ).all()


def service_state(space: Space, name: str) -> ServiceState:
    for service in space.services:
        if service.name == name:
            return service
    raise NotFound(f"space {space.name!r} has no service {name!r}")


def _flush_or_conflict(session: Session, message: str) -> None:
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as e:
        raise Conflict(message) from e


def _is_sqlite(session: Session) -> bool:
    bind = session.get_bind()
    return bind.dialect.name == "sqlite"


def count_by_phase(session: Session) -> dict[str, int]:
    rows = session.execute(
        select(Space.phase, func.count()).where(Space.live_name.is_not(None)).group_by(Space.phase)
    ).all()
    return {phase: count for phase, count in rows}


def deploys(session: Session, space: Space, *, limit: int) -> Sequence[Deploy]:
    return session.scalars(
        select(Deploy).where(Deploy.space_id == space.id).order_by(Deploy.id.desc()).limit(limit)
    ).all()


def unfinished_deploys(session: Session, space_id: int) -> Sequence[Deploy]:
    return session.scalars(
        select(Deploy)
        .where(Deploy.space_id == space_id, Deploy.result.in_(("pending", "running")))
        .order_by(Deploy.id)
    ).all()


def deploy_by_id(session: Session, deploy_id: int) -> Deploy:
    deploy = session.get(Deploy, deploy_id)
    if deploy is None:
        raise NotFound(f"no deploy #{deploy_id}")
    return deploy


def spaces_of_template(session: Session, template: str) -> Sequence[Space]:
    return session.scalars(
        select(Space)
        .where(Space.live_name.is_not(None), Space.template == template)
        .order_by(Space.id)
    ).all()


SORTS = {
    "newest": (Space.id.desc(),),
    "oldest": (Space.id.asc(),),
    "name": (Space.name.asc(), Space.id.desc()),
    "expires": (Space.expires_at.asc(), Space.id.desc()),
}


def page_spaces(
    session: Session, where: SpaceFilter, *, sort: str, offset: int, limit: int
) -> tuple[Sequence[Space], int]:
    """A page of spaces in the given order (a key of SORTS), and the total that match."""
    query = _filtered(where)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    items = session.scalars(query.order_by(*SORTS[sort]).offset(offset).limit(limit)).all()
    return items, total


def installation(session: Session, *, new: str, now: datetime) -> str:
    """This installation's id: the one recorded, else `new`, recorded now (the first of
    several replicas starting together wins; the others read it)."""
    found = session.scalar(select(Installation.installation).where(Installation.id == 1))
    if found is not None:
        return found
    session.add(Installation(id=1, installation=new, created_at=now))
    _flush_or_conflict(session, "another replica recorded the installation id first")
    return new
