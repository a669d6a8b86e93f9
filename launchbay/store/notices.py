"""Notices owed to channels, users' channels and extend links: reads and writes in the
caller's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from launchbay.domain.notices import NoticeKind
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


def notice_keys(session: Session, space_id: int) -> set[str]:
    return set(session.scalars(select(Notice.key).where(Notice.space_id == space_id)))


def owed(session: Session, *, now: datetime, limit: int = 50) -> Sequence[Notice]:
    return session.scalars(
        select(Notice)
        .where(Notice.sent_at.is_(None), Notice.next_at <= now)
        .order_by(Notice.id)
        .limit(limit)
    ).all()


def notices_of(session: Session, space_id: int) -> Sequence[Notice]:
    return session.scalars(
        select(Notice).where(Notice.space_id == space_id).order_by(Notice.id)
    ).all()


def channels_of(session: Session, owner: str) -> Sequence[UserChannel]:
    return session.scalars(
        select(UserChannel).join(User).where(User.name == owner).order_by(UserChannel.id)
    ).all()


def user_by_name(session: Session, name: str) -> User | None:
    return session.scalar(select(User).where(User.name == name))


def link_for_update(session: Session, digest: str) -> ExtendLink | None:
    return session.scalar(select(ExtendLink).where(ExtendLink.digest == digest).with_for_update())
