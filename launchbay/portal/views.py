"""What templates need to show a space: times, badges, rights. Pure helpers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from launchbay.domain.auth import Actor, may_change
from launchbay.domain.durations import format_duration, instant
from launchbay.domain.phases import Phase
from launchbay.domain.template import Template


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


def expiry_class(expires_at: datetime, *, now: datetime | None = None) -> str:
    """`late` once expired, `soon` under 30 minutes (amber), else empty."""
    left = expires_at - (now or datetime.now(UTC))
    if left <= timedelta(0):
        return "late"
    return "soon" if left < timedelta(minutes=30) else ""


def can_modify(viewer: Actor | None, owner: str) -> bool:
    return may_change(viewer, owner=owner)


def is_live(phase: str) -> bool:
    return Phase(phase) not in (Phase.DELETING, Phase.DELETED)


def ttl_default(template: Template) -> str:
    return format_duration(template.ttl.default)


def ttl_max(template: Template) -> str:
    return format_duration(template.ttl.max)


PHASES = [p.value for p in Phase]
