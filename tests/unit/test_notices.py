"""The pure rules of notices: which warning is due, where a user's channel may point."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from launchbay.domain.errors import Invalid
from launchbay.domain.expiry import expiring
from launchbay.domain.notices import check_user_url, warning_due

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
OFFSETS = (timedelta(hours=24), timedelta(hours=1), timedelta(minutes=10))


def due(life: timedelta, left: timedelta) -> timedelta | None:
    return warning_due(created_at=T0, expires_at=T0 + life, now=T0 + life - left, offsets=OFFSETS)


def test_the_smallest_offset_whose_moment_came_is_due_and_none_longer_than_the_life():
    assert due(timedelta(days=3), timedelta(hours=30)) is None
    assert due(timedelta(days=3), timedelta(hours=23)) == timedelta(hours=24)
    assert due(timedelta(days=3), timedelta(minutes=50)) == timedelta(hours=1)
    assert due(timedelta(days=3), timedelta(minutes=5)) == timedelta(minutes=10)
    assert due(timedelta(hours=2), timedelta(hours=1, minutes=59)) is None  # no 24h warning
    assert due(timedelta(hours=1), timedelta(minutes=30)) is None  # an hour's life: no 1h
    assert due(timedelta(hours=1), timedelta(minutes=9)) == timedelta(minutes=10)
    assert due(timedelta(hours=1), timedelta(0)) is None  # expired: the reaper's turn


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.slack.com.evil.example/services/x",
        "https://hooks.slack.com@evil.example/services/x",
        "http://hooks.slack.com/services/x",
        "https://hooks.slack.com:8443/services/x",
        "https://user@hooks.slack.com/services/x",
        "https://hooks.slack.com/servicesx",
        "https://hooks.slack.com:99999/services/x",
        "https://169.254.169.254/latest",
        "https://hooks.slack.com/services/../admin/",
        "https://hooks.slack.com/services/%2e%2e/admin/",
        "https://hooks.slack.com/services/..%2fadmin/",
        "https://hooks.slack.com/services%2f..%2fadmin",
        "https://hooks.slack.com/services/..\\admin",
        "https://hooks.slack.com/services/%252e%252e/admin",
    ],
)
def test_a_users_channel_is_matched_as_a_url_not_as_text(url):
    with pytest.raises(Invalid, match="is not allowed here"):
        check_user_url(url, ["https://hooks.slack.com/services/"])


def test_a_users_channel_under_an_allowed_prefix_is_accepted():
    check_user_url("https://Hooks.Slack.com/services/T0/B0/x", ["https://hooks.slack.com/services"])
    check_user_url("http://127.0.0.1:9000/hook", ["http://127.0.0.1:9000/"])


def test_a_space_is_expiring_in_its_last_hour_only_if_it_lived_longer_and_always_at_the_end():
    def shown(life: timedelta, left: timedelta) -> bool:
        return expiring(created_at=T0, expires_at=T0 + life, now=T0 + life - left)

    assert not shown(timedelta(hours=1), timedelta(minutes=59))
    assert shown(timedelta(hours=1), timedelta(minutes=9))
    assert shown(timedelta(hours=3), timedelta(minutes=59))
    assert not shown(timedelta(hours=3), timedelta(minutes=61))
    assert not shown(timedelta(hours=3), timedelta(0))
