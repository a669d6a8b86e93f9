"""When a space is shown as expiring. Pure and light: the CLI imports it."""

from __future__ import annotations

from datetime import datetime, timedelta

# A space this close to its expiry is shown as expiring (a banner, a marker) if it has
# lived longer than that; any space is, in its last LAST_CALL.
SOON = timedelta(hours=1)
LAST_CALL = timedelta(minutes=10)


def expiring(*, created_at: datetime, expires_at: datetime, now: datetime) -> bool:
    """Whether to show a space as expiring: within SOON of its expiry, unless its whole
    life is that short (a one-hour space is not "expiring" from birth), and always in its
    last LAST_CALL."""
    left = expires_at - now
    if left <= timedelta(0):
        return False
    return left <= LAST_CALL or (left <= SOON and expires_at - SOON > created_at)
