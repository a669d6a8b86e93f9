from datetime import timedelta

import pytest

from launchbay.domain.durations import format_duration, parse_duration
from launchbay.domain.errors import Invalid
from launchbay.domain.names import MAX_SPACE_NAME, parse_service_name, parse_space_name
from launchbay.domain.phases import Phase, can_transition


@pytest.mark.parametrize("name", ["a", "pr-123", "0day", "x" * MAX_SPACE_NAME, "web-2-api"])
def test_dns_label_space_names_are_accepted(name):
    assert parse_space_name(name) == name


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("", "empty"),
        ("Upper", "not valid"),
        ("-lead", "not valid"),
        ("trail-", "not valid"),
        ("under_score", "not valid"),
        ("dot.ted", "not valid"),
        ("x" * (MAX_SPACE_NAME + 1), "maximum is 40"),
        ("spa ce", "not valid"),
    ],
)
def test_invalid_space_names_are_refused_with_the_reason(name, why):
    with pytest.raises(Invalid, match=why):
        parse_space_name(name)


def test_service_names_must_start_with_a_letter():
    assert parse_service_name("api2") == "api2"
    with pytest.raises(Invalid):
        parse_service_name("2api")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("10s", 10),
        ("500ms", 0.5),
        ("90m", 5400),
        ("1h30m", 5400),
        ("2d", 172800),
        (" 3H ", 10800),
        ("1w", 604800),
    ],
)
def test_durations_are_parsed(text, seconds):
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "10", "ten minutes", "1x", "-5m", "0s", "1h 30m", "h"])
def test_bad_durations_are_refused(text):
    with pytest.raises(Invalid):
        parse_duration(text)


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(seconds=5400), "1h30m"),
        (timedelta(0), "0s"),
        (timedelta(milliseconds=200), "200ms"),
        (timedelta(seconds=-90), "-1m30s"),
        (timedelta(days=1, seconds=1), "1d1s"),
    ],
)
def test_durations_are_formatted_shortest_first(delta, text):
    assert format_duration(delta) == text


def test_delete_may_follow_any_live_phase_but_not_deleted():
    for phase in Phase:
        assert can_transition(phase, Phase.DELETING) is (phase is not Phase.DELETED)


def test_a_deleted_space_never_comes_back():
    assert not any(can_transition(Phase.DELETED, p) for p in Phase if p is not Phase.DELETED)


def test_a_pending_space_cannot_jump_to_ready():
    assert not can_transition(Phase.PENDING, Phase.READY)
    assert can_transition(Phase.PROVISIONING, Phase.READY)
    assert Phase.READY.is_settled and not Phase.PROVISIONING.is_settled
