"""Durations as people write them: `500ms`, `10s`, `90m`, `1h30m`, `2d`."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from launchbay.domain.errors import Invalid

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PART = re.compile(r"(\d+)(ms|[smhdw])")
_WHOLE = re.compile(r"^(\d+(ms|[smhdw]))+$")
DURATION_PATTERN = r"^([0-9]+(ms|[smhdwSMHDW]))+$"
# Longer than any TTL, extension or timeout anyone means, and far inside what datetime
# arithmetic can hold (timedelta tops out near 2.7 million years).
LONGEST = timedelta(days=3660)


def parse_duration(raw: str) -> timedelta:
    """Parse `1h30m`-style text. A unit is required: a bare `90` is ambiguous."""
    text = raw.strip().lower()
    if len(text) > 40:
        raise Invalid(f"duration {raw[:40]!r}... is too long: at most {format_duration(LONGEST)}")
    if not _WHOLE.match(text):
        raise Invalid(
            f"{raw!r} is not a duration: write a number with a unit, like 30s, 15m, 2h, 1h30m or 3d"
        )
    seconds = sum(int(n) * _UNITS[unit] for n, unit in _PART.findall(text))
    if seconds <= 0:
        raise Invalid(f"duration {raw!r} must be longer than zero")
    if seconds > LONGEST.total_seconds():
        raise Invalid(f"duration {raw!r} is too long: at most {format_duration(LONGEST)}")
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """The shortest `1h30m`-style text for a duration; negative durations get a leading `-`."""
    exact = value.total_seconds()
    if 0 < abs(exact) < 1:
        return f"{'-' if exact < 0 else ''}{round(abs(exact) * 1000)}ms"
    total = int(exact)
    sign = "-" if total < 0 else ""
    total = abs(total)
    if total == 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, total = divmod(total, size)
        if count:
            parts.append(f"{count}{unit}")
    return sign + "".join(parts)


def instant(moment: datetime) -> str:
    """A moment as machines read it everywhere Launchbay prints one: ISO 8601 in UTC, to the
    second, with `Z` (`2026-12-02T08:00:00Z`)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
