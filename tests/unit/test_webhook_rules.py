from datetime import UTC, datetime, timedelta

import pytest

from launchbay.domain.errors import Invalid
from launchbay.domain.webhooks import (
    PullRequestEvent,
    RepoMapping,
    Verdict,
    decide,
    parse_pull_request,
    sign,
    signature_matches,
    space_name,
)

SECRET = b"a-test-secret-of-some-length"
T0 = datetime(2026, 1, 1, tzinfo=UTC)
MAPPING = RepoMapping(template="demo", service="api")


def event(
    action: str, *, at: datetime = T0, fork: bool = False, sha: str = "abc1234def"
) -> PullRequestEvent:
    return PullRequestEvent(
        repository="acme/api", number=7, action=action, head_sha=sha, updated_at=at, from_fork=fork
    )


def test_signatures_are_checked_over_the_exact_body():
    body = b'{"a": 1}'
    assert signature_matches(SECRET, body, sign(SECRET, body))
    assert not signature_matches(SECRET, body + b" ", sign(SECRET, body))
    assert not signature_matches(SECRET, body, sign(b"another-secret-entirely", body))
    assert not signature_matches(SECRET, body, None)
    assert not signature_matches(SECRET, body, "sha1=" + sign(SECRET, body)[7:])


def test_space_names_are_made_valid_dns_labels():
    assert (
        space_name("pr-${number}-${repo}", number=7, repository="Acme/My_Service.API")
        == "pr-7-my-service-api"
    )
    long = space_name("pr-${number}-${repo}", number=7, repository="acme/" + "x" * 80)
    assert len(long) == 40 and not long.endswith("-")
    with pytest.raises(Invalid):
        space_name("${repo}", number=1, repository="acme/___")


def test_open_and_synchronize_apply_the_head_commit_as_the_version():
    decision = decide(event("opened"), MAPPING, recorded_state=None, recorded_updated_at=None)
    assert (
        decision.verdict is Verdict.APPLY
        and decision.space == "pr-7-api"
        and decision.version == "sha-abc1234def"
    )
    later = decide(
        event("synchronize", at=T0 + timedelta(minutes=1), sha="fff"),
        MAPPING,
        recorded_state="open",
        recorded_updated_at=T0,
    )
    assert later.verdict is Verdict.APPLY and later.version == "sha-fff"


def test_close_deletes():
    assert (
        decide(event("closed"), MAPPING, recorded_state="open", recorded_updated_at=T0).verdict
        is Verdict.DELETE
    )


def test_a_late_delivery_never_resurrects_a_closed_pull_request():
    late = decide(
        event("synchronize", at=T0 - timedelta(seconds=5)),
        MAPPING,
        recorded_state="closed",
        recorded_updated_at=T0,
    )
    assert late.verdict is Verdict.IGNORE and "stale" in late.reason
    same_time = decide(
        event("synchronize", at=T0), MAPPING, recorded_state="closed", recorded_updated_at=T0
    )
    assert same_time.verdict is Verdict.IGNORE


def test_reopening_brings_the_space_back():
    again = decide(
        event("reopened", at=T0 + timedelta(hours=1)),
        MAPPING,
        recorded_state="closed",
        recorded_updated_at=T0,
    )
    assert again.verdict is Verdict.APPLY


def test_forks_are_refused_unless_allowed():
    assert (
        decide(
            event("opened", fork=True), MAPPING, recorded_state=None, recorded_updated_at=None
        ).verdict
        is Verdict.IGNORE
    )
    allowed = RepoMapping(template="demo", service="api", allow_forks=True)
    assert (
        decide(
            event("opened", fork=True), allowed, recorded_state=None, recorded_updated_at=None
        ).verdict
        is Verdict.APPLY
    )


def test_other_actions_need_nothing():
    assert (
        decide(event("labeled"), MAPPING, recorded_state=None, recorded_updated_at=None).verdict
        is Verdict.IGNORE
    )


def test_payloads_without_the_needed_fields_are_refused():
    with pytest.raises(Invalid, match="not a pull_request payload"):
        parse_pull_request({"action": "opened"})
