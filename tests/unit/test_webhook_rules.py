from datetime import UTC, datetime, timedelta

import pytest

from launchbay.domain.errors import Invalid
from launchbay.domain.webhooks import (
    GitHubConfig,
    PrState,
    PullRequestEvent,
    PullRequestPayload,
    Recorded,
    RepoMapping,
    decide,
    read_payload,
    sign,
    signature_matches,
    space_name,
    version_of,
)

SECRET = b"a-test-secret-of-some-length"
T0 = datetime(2026, 1, 1, tzinfo=UTC)
MAPPING = RepoMapping(template="demo", service="api")
SHA = "abc1234def" + "0" * 30


def event(
    action: str, *, at: datetime = T0, fork: bool = False, sha: str = SHA
) -> PullRequestEvent:
    return PullRequestEvent(
        repository="acme/api", number=7, action=action, head_sha=sha, updated_at=at, from_fork=fork
    )


def recorded(state: PrState, action: str, at: datetime = T0) -> Recorded:
    return Recorded(state, action, SHA, at)


def test_signatures_are_checked_over_the_exact_body():
    body = b'{"a": 1}'
    assert signature_matches(SECRET, body, sign(SECRET, body))
    assert not signature_matches(SECRET, body + b" ", sign(SECRET, body))
    assert not signature_matches(SECRET, body, sign(b"another-secret-entirely", body))
    assert not signature_matches(SECRET, body, None)
    assert not signature_matches(SECRET, body, "sha1=" + sign(SECRET, body)[7:])
    assert not signature_matches(SECRET, body, "sha256=\u00e9\u2603")


def test_space_names_are_valid_dns_labels_and_long_ones_end_in_a_hash_of_the_whole():
    assert (
        space_name("pr-${number}-${repo}", number=7, repository="Acme/My_Service.API")
        == "pr-7-my-service-api"
    )
    one = space_name("pr-${number}-${repo}", number=7, repository="acme/" + "x" * 80 + "-one")
    two = space_name("pr-${number}-${repo}", number=7, repository="acme/" + "x" * 80 + "-two")
    assert len(one) <= 40 and not one.endswith("-") and one != two
    with pytest.raises(Invalid):
        space_name("${repo}", number=1, repository="acme/___")


def test_open_synchronize_and_reopen_record_open_and_close_records_closed():
    assert decide(event("opened"), MAPPING, None).state is PrState.OPEN
    later = event("synchronize", at=T0 + timedelta(minutes=1), sha="f" * 40)
    assert decide(later, MAPPING, recorded(PrState.OPEN, "opened")).state is PrState.OPEN
    assert version_of(MAPPING, head_sha=later.head_sha, number=7) == "sha-" + "f" * 40
    closed = decide(event("closed", at=T0 + timedelta(1)), MAPPING, recorded(PrState.OPEN, "x"))
    assert closed.state is PrState.CLOSED
    again = event("reopened", at=T0 + timedelta(hours=1))
    assert decide(again, MAPPING, recorded(PrState.CLOSED, "closed")).state is PrState.OPEN


def test_a_late_delivery_never_goes_back():
    late = decide(
        event("synchronize", at=T0 - timedelta(seconds=5)),
        MAPPING,
        recorded(PrState.CLOSED, "closed"),
    )
    assert late.state is None and "stale" in late.reason


def test_within_one_second_an_opened_never_replaces_a_later_state():
    same_second = recorded(PrState.OPEN, "synchronize")
    assert decide(event("opened"), MAPPING, same_second).state is None
    assert decide(event("closed"), MAPPING, same_second).state is PrState.CLOSED
    # The same state told again (GitHub's Redeliver) is converged once more.
    assert decide(event("opened"), MAPPING, recorded(PrState.OPEN, "opened")).state is not None


def test_forks_are_refused_unless_allowed_and_an_unknown_head_is_a_fork():
    assert decide(event("opened", fork=True), MAPPING, None).state is None
    allowed = RepoMapping(template="demo", service="api", allow_forks=True)
    assert decide(event("opened", fork=True), allowed, None).state is PrState.OPEN
    payload = {
        "action": "opened",
        "number": 7,
        "pull_request": {"number": 7, "updated_at": T0.isoformat(), "head": {"sha": SHA}},
        "repository": {"full_name": "Acme/Api"},
    }
    parsed = PullRequestEvent.of(read_payload(PullRequestPayload, payload, "pull_request"))
    assert parsed.from_fork and parsed.repository == "acme/api"


def test_other_actions_need_nothing():
    assert decide(event("labeled"), MAPPING, None).state is None


def test_payloads_without_the_needed_fields_are_refused_naming_them():
    with pytest.raises(Invalid, match="number: field required"):
        read_payload(PullRequestPayload, {"action": "opened"}, "pull_request")


def test_repositories_are_matched_without_regard_to_case_and_listed_once():
    config = GitHubConfig.model_validate(
        {"repositories": {"Acme/API": {"template": "demo", "service": "api"}}}
    )
    assert config.mapping("acme/api") is not None
    with pytest.raises(ValueError, match="listed twice"):
        GitHubConfig.model_validate(
            {
                "repositories": {
                    "acme/api": {"template": "demo", "service": "api"},
                    "ACME/api": {"template": "demo", "service": "api"},
                }
            }
        )
