"""Notices owed to channels, users' channels and extend links: reads and writes in the
caller's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from launchbay.domain.notices import NoticeKind
from launchbay.domain.phases import Phase
from launchbay.store.models import ExtendLink, Notice, Space, User, UserChannel


def add_notice(
    session: Session, space: Space, kind: NoticeKind, *, key: str, text: str, now: datetime
) -> bool:
    """Record a notice once per space and key; False if it was recorded before."""
    known = session.scalar(select(Notice.id).where(Notice.space_id == space.id, Notice.key == key))
    if known is not None:
        return False
    session.add(
        Notice(
            space_id=space.id,
            kind=kind,
            key=key,
            text=text,
            created_at=now,
            reached={},
            attempts=0,
            next_at=now,
            error="",
        )
    )
    return True


def recorded(session: Session, wanted: list[tuple[int, str]]) -> set[tuple[int, str]]:
    """Which of these (space id, key) notices are recorded already."""
    if not wanted:
        return set()
    rows = session.execute(
        select(Notice.space_id, Notice.key).where(Notice.key.in_({key for _, key in wanted}))
    )
    return {(space_id, key) for space_id, key in rows} & set(wanted)


def owed(session: Session, *, now: datetime, limit: int = 50) -> Sequence[Notice]:
    return session.scalars(
        select(Notice)
        .where(Notice.sent_at.is_(None), Notice.next_at <= now)
        .order_by(Notice.id)
        .limit(limit)
    ).all()


def expiring(session: Session, *, before: datetime) -> list[tuple[int, datetime, datetime]]:
    """(id, created_at, expires_at) of each live space, not being deleted, that expires
    before then: columns only, cheap enough for every pass."""
    rows = session.execute(
        select(Space.id, Space.created_at, Space.expires_at).where(
            Space.live_name.is_not(None),
            Space.phase != Phase.DELETING,
            Space.expires_at <= before,
        )
    )
    return [(space_id, created, expires) for space_id, created, expires in rows]


def channels_of(session: Session, owner: str) -> Sequence[UserChannel]:
    return session.scalars(
        select(UserChannel).join(User).where(User.name == owner).order_by(UserChannel.id)
    ).all()


def user_by_name(session: Session, name: str) -> User | None:
    return session.scalar(select(User).where(User.name == name))


def link_for_update(session: Session, digest: str) -> ExtendLink | None:
    return session.scalar(select(ExtendLink).where(ExtendLink.digest == digest).with_for_update())
