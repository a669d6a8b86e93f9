"""What templates need to show a space: times, badges, rights. Pure helpers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from launchbay.domain.auth import Actor, may_change
from launchbay.domain.durations import format_duration, instant
from launchbay.domain.expiry import expiring
from launchbay.domain.phases import Phase
from launchbay.domain.spec import extension_room
from launchbay.domain.template import Template
from launchbay.engine.views import SpaceView


def iso(moment: datetime | None) -> str:
    return instant(moment) if moment else ""


def relative(moment: datetime | None, *, now: datetime | None = None) -> str:
    """`5m ago`, `in 1h20m`: two units at most."""
    if moment is None:
        return "-"
    seconds = int((moment - (now or datetime.now(UTC))).total_seconds())
    if seconds == 0:
        return "now"
    text = format_duration(timedelta(seconds=abs(seconds)))
    units = [i for i, c in enumerate(text) if c.isalpha()]
    text = text[: units[1] + 1] if len(units) > 1 else text
    return f"in {text}" if seconds > 0 else f"{text} ago"


def expiry_class(space: SpaceView, *, now: datetime | None = None) -> str:
    """`late` once expired, `soon` when it is shown as expiring (`notices.expiring`)."""
    now = now or datetime.now(UTC)
    if space.expires_at <= now:
        return "late"
    soon = expiring(created_at=space.created_at, expires_at=space.expires_at, now=now)
    return "soon" if soon else ""


def extension_left(space: SpaceView, template: Template | None) -> str:
    """How much longer the template still lets the space live: `3h`, or empty."""
    if template is None:
        return ""
    room = extension_room(
        created_at=space.created_at,
        expires_at=space.expires_at,
        policy=template.ttl,
        now=datetime.now(UTC),
    )
    minutes = timedelta(minutes=int(room.total_seconds() // 60))
    return format_duration(minutes) if minutes >= timedelta(minutes=1) else ""


def clock_time(moment: datetime) -> str:
    """`14:05 UTC`, or `Dec 3 14:05 UTC` on another day."""
    moment = moment.astimezone(UTC)
    same_day = moment.date() == datetime.now(UTC).date()
    return moment.strftime("%H:%M UTC" if same_day else "%b %-d %H:%M UTC")


def can_modify(viewer: Actor | None, owner: str, team: str = "") -> bool:
    return may_change(viewer, owner=owner, team=team)


def is_live(phase: str) -> bool:
    return Phase(phase) not in (Phase.DELETING, Phase.DELETED)


def ttl_default(template: Template) -> str:
    return format_duration(template.ttl.default)


def ttl_max(template: Template) -> str:
    return format_duration(template.ttl.max)


PHASES = [p.value for p in Phase]
