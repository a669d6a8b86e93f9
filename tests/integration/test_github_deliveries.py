"""GitHub deliveries in any order, twice, malformed or racing, in-process on the fake
runtime (held to the runtime contract) and a real store: SQLite and PostgreSQL.

Each test is a finding of the outside try of this feature; the races run many times.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from launchbay.domain.auth import Actor
from launchbay.domain.errors import Invalid, Unauthorized
from launchbay.domain.webhooks import GitHubConfig, sign
from launchbay.engine.assembly import Launchbay
from launchbay.engine.catalog import TemplateCatalog
from launchbay.engine.engine import Engine, EngineSettings
from launchbay.engine.requests import CreateSpace
from launchbay.engine.webhooks import Accepted, GitHubHooks
from launchbay.store.db import Store
from tests.fake_runtime import FakeRuntime, Script
from tests.support import wait_until

SECRET = b"a-test-secret-of-some-length"
T0 = datetime(2026, 11, 1, 12, tzinfo=UTC)
ADMIN = Actor("admin", is_admin=True)
APP = """\
name: app
ttl: {default: 1h, max: 2h}
services:
  app:
    version: main
    process: {command: [app]}
"""
LONG = "a-repository-with-a-rather-long-name-for-a-service"
CONFIG = {
    "repositories": {
        "Acme/App": {"template": "app", "service": "app", "version": "${short_sha}"},
        f"acme/{LONG}-one": {"template": "app", "service": "app"},
        f"acme/{LONG}-two": {"template": "app", "service": "app"},
        "one/api": {"template": "app", "service": "app", "space": "api-${number}"},
        "two/api": {"template": "app", "service": "app", "space": "api-${number}"},
        "acme/main": {"template": "app", "service": "app", "follow_main": True},
    }
}


@pytest.fixture
def bay(store: Store, tmp_path: Path) -> Iterator[Launchbay]:
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "app.yaml").write_text(APP)
    engine = Engine(
        store=store,
        runtimes={"process": FakeRuntime(scripts={"app": Script()})},
        catalog=TemplateCatalog(tmp_path / "templates"),
        settings=EngineSettings(),
    )
    made = Launchbay.of(engine)
    made.start()
    yield made
    made.stop()


def make_hooks(bay: Launchbay, config: dict[str, Any] = CONFIG) -> GitHubHooks:
    return GitHubHooks(
        engine=bay.engine,
        requests=bay.requests,
        deploys=bay.deploys,
        config=GitHubConfig.model_validate(config),
        secret=SECRET,
    )


@pytest.fixture
def hooks(bay: Launchbay) -> Iterator[GitHubHooks]:
    made = make_hooks(bay)
    made.start()
    yield made
    made.stop()


def sha(head: str) -> str:
    return head.ljust(40, "0")


def pr(
    action: str,
    number: int,
    *,
    at: datetime = T0,
    head: str = "aaaaaaa",
    repo: str = "acme/app",
    head_repo: Any = "same",
) -> dict[str, Any]:
    return {
        "action": action,
        "number": number,
        "pull_request": {
            "number": number,
            "updated_at": at.isoformat(),
            "head": {
                "sha": sha(head),
                "repo": {"full_name": repo} if head_repo == "same" else head_repo,
            },
        },
        "repository": {"full_name": repo, "default_branch": "main"},
    }


def send(
    hooks: GitHubHooks,
    payload: Any,
    *,
    event: str = "pull_request",
    delivery: str | None = None,
    body: bytes | None = None,
) -> Accepted:
    raw = body if body is not None else json.dumps(payload).encode()
    return hooks.accept(
        body=raw,
        headers={
            "x-github-event": event,
            "x-github-delivery": delivery or str(uuid.uuid4()),
            "x-hub-signature-256": sign(SECRET, raw),
        },
    )


def together(*calls: Any) -> None:
    """Run the calls at the same moment, each in a thread of its own."""
    barrier = threading.Barrier(len(calls))
    errors: list[BaseException] = []

    def run(call: Any) -> None:
        barrier.wait()
        try:
            call()
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=run, args=(c,)) for c in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def deliveries(bay: Launchbay) -> dict[str, Any]:
    return {d.id: d for d in bay.queries.deliveries(limit=1000)}


def settled(bay: Launchbay) -> dict[str, Any]:
    """Every delivery finished (none owed), and every space out of a transitional phase."""

    def done() -> bool:
        if any(d.status == "accepted" for d in deliveries(bay).values()):
            return False
        spaces, _ = bay.queries.spaces(_all(), limit=500, before_id=None)
        return all(
            s.phase in ("ready", "deleted", "failed")
            and (s.phase != "ready" or s.observed_generation >= s.generation)
            for s in spaces
        )

    wait_until(done, timeout=60, interval=0.05, what="every delivery and space settled")
    return deliveries(bay)


def _all() -> Any:
    from launchbay.engine.queries import SpaceFilter

    return SpaceFilter(include_deleted=True)


def live(bay: Launchbay, name: str) -> bool:
    return bay.queries.is_live(name)


def version(bay: Launchbay, name: str) -> str:
    app = bay.queries.space(name).service("app")
    assert app is not None
    return app.version


# -- finding 1: a closed PR's space came back --------------------------------------------------


def test_open_and_close_arriving_together_leave_nothing_running_20_times(bay, hooks):
    for n in range(1, 21):
        opened, closed = pr("opened", n), pr("closed", n, at=T0 + timedelta(seconds=1))
        if n % 2:
            together(lambda o=opened: send(hooks, o), lambda c=closed: send(hooks, c))
        else:  # the close right after the open was answered
            send(hooks, opened)
            send(hooks, closed)
    seen = settled(bay)
    for n in range(1, 21):
        assert not live(bay, f"pr-{n}-app"), f"PR #{n} is closed but its space runs"
    assert {d.status for d in seen.values()} <= {"done", "ignored"}
    assert all(d.reason for d in seen.values())


def test_a_close_that_arrives_before_its_open_creates_nothing(bay, hooks):
    send(hooks, pr("closed", 30, at=T0 + timedelta(seconds=5)))
    late = send(hooks, pr("opened", 30))
    assert late.status == "ignored" and "stale" in late.reason
    settled(bay)
    assert not live(bay, "pr-30-app")


# -- finding 2: close then quick reopen left an open PR with no space --------------------------


def test_close_then_quick_reopen_ends_with_a_running_space_10_times(bay, hooks):
    for n in range(40, 50):
        send(hooks, pr("opened", n))
    settled(bay)
    for n in range(40, 50):
        send(hooks, pr("closed", n, at=T0 + timedelta(seconds=1)))
        send(hooks, pr("reopened", n, at=T0 + timedelta(seconds=2), head="bbbbbbb"))
    seen = settled(bay)
    for n in range(40, 50):
        space = bay.queries.space(f"pr-{n}-app")
        assert space.phase == "ready" and version(bay, f"pr-{n}-app") == "bbbbbbb"
    assert {d.status for d in seen.values()} == {"done"}


def test_a_reopen_that_looks_while_the_close_is_deleting_creates_the_space_once_it_is_gone(
    bay, hooks
):
    # The reopen saw the space still deleting, the delete finished, and the update found
    # "no space named ...": the delivery failed for good and the open PR had no space.
    send(hooks, pr("opened", 60))
    settled(bay)
    looked = bay.deploys._live_runtime

    def look_then_let_the_delete_finish(name: str) -> str | None:
        runtime = looked(name)
        if runtime is not None and bay.queries.space(name).phase == "deleting":
            wait_until(lambda: not live(bay, name), timeout=20, what="the delete to finish")
        return runtime

    fake = bay.engine.board.get("process")
    destroy = fake.destroy

    def slow_destroy(space: Any) -> None:
        threading.Event().wait(1.0)  # a delete that takes a moment, as real ones do
        destroy(space)

    fake.destroy = slow_destroy
    bay.deploys._live_runtime = look_then_let_the_delete_finish
    send(hooks, pr("closed", 60, at=T0 + timedelta(seconds=1)))
    wait_until(
        lambda: bay.queries.space("pr-60-app").phase == "deleting", timeout=20, what="deleting"
    )
    send(hooks, pr("reopened", 60, at=T0 + timedelta(seconds=2), head="bbbbbbb"))
    seen = settled(bay)
    assert live(bay, "pr-60-app") and version(bay, "pr-60-app") == "bbbbbbb"
    assert {d.status for d in seen.values()} == {"done"}


def test_close_of_a_provisioning_space_and_reopen_soon_after_leave_every_open_pr_a_space(
    bay, hooks
):
    bay.engine.board.get("process").scripts = {"app": Script(ready_after=0.5)}
    for n in range(70, 100):
        send(hooks, pr("opened", n))
        send(hooks, pr("closed", n, at=T0 + timedelta(seconds=1)))
        threading.Event().wait(0.3)
        send(hooks, pr("reopened", n, at=T0 + timedelta(seconds=2), head="bbbbbbb"))
    seen = settled(bay)
    for n in range(70, 100):
        assert live(bay, f"pr-{n}-app"), f"PR #{n} is open but has no space"
        assert version(bay, f"pr-{n}-app") == "bbbbbbb"
    assert {d.status for d in seen.values()} == {"done"}


# -- finding 3: a redelivery could never recover a delivery ------------------------------------


def test_a_failed_delivery_is_processed_again_when_redelivered_and_a_done_one_is_not(bay, hooks):
    bay.requests.create(CreateSpace(name="pr-5-app", template="app"), actor=ADMIN)
    first = send(hooks, pr("opened", 5), delivery="d-5")
    assert first.status == "accepted"
    failed = settled(bay)["d-5"]
    assert failed.status == "failed" and "by hand" in failed.reason
    bay.requests.delete("pr-5-app", actor=ADMIN)
    wait_until(lambda: not live(bay, "pr-5-app"), timeout=30, what="hand-made space gone")
    again = send(hooks, pr("opened", 5), delivery="d-5")
    assert again.status == "accepted"
    assert settled(bay)["d-5"].status == "done"
    assert bay.queries.space("pr-5-app").origin == "github:acme/app#5"
    duplicate = send(hooks, pr("opened", 5), delivery="d-5")
    assert duplicate.status == "duplicate" and "done" in duplicate.reason


def test_a_refused_delivery_is_processed_again_when_redelivered(bay, hooks):
    bad = pr("opened", 6)
    bad["pull_request"]["updated_at"] = "2026-11-01T12:00:00"
    with pytest.raises(Invalid):
        send(hooks, bad, delivery="d-6")
    assert deliveries(bay)["d-6"].status == "rejected"
    assert send(hooks, pr("opened", 6), delivery="d-6").status == "accepted"
    assert settled(bay)["d-6"].status == "done" and live(bay, "pr-6-app")


def test_an_ignored_delivery_is_processed_again_once_the_repository_is_configured(bay):
    early = make_hooks(bay, {"repositories": {}})
    assert send(early, pr("opened", 8), delivery="d-8").status == "ignored"
    configured = make_hooks(bay)
    configured.start()
    try:
        assert send(configured, pr("opened", 8), delivery="d-8").status == "accepted"
        assert settled(bay)["d-8"].status == "done" and live(bay, "pr-8-app")
    finally:
        configured.stop()


# -- finding 4: the fork check failed open ---------------------------------------------------


def test_a_pull_request_whose_head_repository_is_gone_counts_as_a_fork(bay, hooks):
    for head_repo in (None, {"full_name": "mallory/app"}):
        answer = send(hooks, pr("opened", 9, head_repo=head_repo))
        assert answer.status == "ignored" and "forks are not allowed" in answer.reason
    missing = pr("opened", 9)
    del missing["pull_request"]["head"]["repo"]
    assert send(hooks, missing).status == "ignored"
    settled(bay)
    assert not live(bay, "pr-9-app")


# -- finding 5: names collided, and the webhook acted on any space of the name -------------------


def test_long_repository_names_get_distinct_space_names(bay, hooks):
    for which in ("one", "two"):
        send(hooks, pr("opened", 1, repo=f"acme/{LONG}-{which}"))
    settled(bay)
    spaces, _ = bay.queries.spaces(_all(), limit=50, before_id=None)
    names = {s.name for s in spaces if s.origin and LONG in s.origin}
    assert len(names) == 2 and all(len(n) <= 40 for n in names)
    send(hooks, pr("closed", 1, repo=f"acme/{LONG}-one", at=T0 + timedelta(seconds=1)))
    settled(bay)
    still = [s for s in bay.queries.spaces(_all(), limit=50, before_id=None)[0] if s.origin]
    assert [s.origin for s in still if s.phase == "ready"] == [f"github:acme/{LONG}-two#1"]


def test_a_webhook_never_touches_a_space_it_did_not_make(bay, hooks):
    bay.requests.create(CreateSpace(name="pr-7-app", template="app"), actor=ADMIN)
    closed = send(hooks, pr("closed", 7), delivery="close-7")
    assert closed.status == "accepted"
    seen = settled(bay)
    assert seen["close-7"].status == "failed" and "left alone" in seen["close-7"].reason
    assert bay.queries.space("pr-7-app").phase == "ready"


def test_two_repositories_whose_patterns_meet_never_share_a_space(bay, hooks):
    send(hooks, pr("opened", 3, repo="one/api", head="1111111"))
    settled(bay)
    clash = send(hooks, pr("synchronize", 3, repo="two/api", head="2222222"), delivery="clash")
    assert clash.status == "accepted"
    seen = settled(bay)
    assert seen["clash"].status == "failed" and "github:one/api#3" in seen["clash"].reason
    assert version(bay, "api-3") == "sha-" + sha("1111111")
    send(hooks, pr("closed", 3, repo="two/api", at=T0 + timedelta(seconds=1)))
    settled(bay)
    assert bay.queries.space("api-3").phase == "ready"


# -- finding 6: a non-ASCII signature crashed the comparison ----------------------------------


def test_a_signature_header_with_any_character_is_refused_not_crashed(bay, hooks):
    body = json.dumps(pr("opened", 11)).encode()
    for header in ("sha256=é" + "0" * 63, "sha256=\u2603", "sha256=", "é"):
        with pytest.raises(Unauthorized) as refused:
            hooks.accept(
                body=body,
                headers={
                    "x-github-event": "pull_request",
                    "x-github-delivery": "x",
                    "x-hub-signature-256": header,
                },
            )
        assert refused.value.challenge is None
    assert deliveries(bay) == {}


# -- finding 7: signed but malformed payloads got 500 -----------------------------------------


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda p: p["pull_request"].update(updated_at="2026-11-01T12:00:00"), "updated_at"),
        (lambda p: p.update(number=10**40), "number"),
        (lambda p: p["pull_request"]["head"].update(sha={"a": 1}), "pull_request.head.sha"),
        (lambda p: p["pull_request"]["head"].update(sha="main"), "pull_request.head.sha"),
        (lambda p: p.pop("pull_request"), "pull_request"),
    ],
)
def test_each_malformed_field_is_refused_naming_it_and_changes_nothing(bay, hooks, change, field):
    payload = pr("opened", 12)
    change(payload)
    with pytest.raises(Invalid, match=field.replace(".", r"\.")):
        send(hooks, payload, delivery="bad")
    assert deliveries(bay)["bad"].status in ("rejected", "ignored")
    assert not live(bay, "pr-12-app")


def test_a_body_nested_100000_levels_is_refused(bay, hooks):
    with pytest.raises(Invalid, match="nests too deeply"):
        send(hooks, None, body=b"[" * 100_000 + b"]" * 100_000)


# -- finding 8: one-second updated_at, reversed arrival ---------------------------------------


def test_a_synchronize_and_an_opened_of_the_same_second_arriving_reversed_keep_the_newer_head(
    bay, hooks
):
    for n in range(60, 70):
        send(hooks, pr("synchronize", n, head="bbbbbbb"))
        late = send(hooks, pr("opened", n, head="aaaaaaa"))
        assert late.status == "ignored"
    settled(bay)
    assert {version(bay, f"pr-{n}-app") for n in range(60, 70)} == {"bbbbbbb"}


# -- finding 9: configuration mistakes were found by each delivery ----------------------------


def test_configuration_mistakes_are_found_before_the_server_starts(bay):
    wrong = {
        "repositories": {
            "acme/a": {"template": "nope", "service": "app"},
            "acme/b": {"template": "app", "service": "nope"},
            "acme/c": {"template": "app", "service": "app", "runtime": "kubernetes"},
            "acme/d": {"template": "app", "service": "app", "ttl": "soon"},
            "acme/e": {"template": "app", "service": "app", "ttl": "3h"},
        }
    }
    problems = "\n".join(make_hooks(bay, wrong).problems())
    for where in ("acme/a.template", "acme/b.service", "acme/c.runtime", "acme/d.ttl"):
        assert f"github.repositories.{where}" in problems
    assert "3h is over template 'app'" in problems
    for key, pattern in (("version", "${sha}"), ("space", "pr-${branch}")):
        with pytest.raises(ValueError, match=r"unknown \$\{"):
            GitHubConfig.model_validate(
                {"repositories": {"acme/f": {"template": "app", "service": "app", key: pattern}}}
            )


# -- finding 10: concurrent copies of one push id redeployed several times ----------------------


def test_ten_copies_of_one_push_at_once_redeploy_once(bay, hooks):
    bay.requests.create(CreateSpace(name="follows-main", template="app"), actor=ADMIN)
    settled(bay)
    push = {
        "ref": "refs/heads/main",
        "after": sha("cafe123"),
        "repository": {"full_name": "acme/main", "default_branch": "main"},
    }
    answers: list[Accepted] = []
    together(
        *[lambda: answers.append(send(hooks, push, event="push", delivery="p")) for _ in range(10)]
    )
    assert sorted(a.status for a in answers) == ["accepted"] + ["duplicate"] * 9
    seen = settled(bay)
    assert seen["p"].status == "done" and "in 1 space" in seen["p"].reason
    assert len(bay.queries.deploys("follows-main")) == 1


# -- finding 11: odd bodies, reasons and names ----------------------------------------------


def test_repository_names_match_without_regard_to_case(bay, hooks):
    assert send(hooks, pr("opened", 13, repo="ACME/app")).status == "accepted"
    settled(bay)
    assert bay.queries.space("pr-13-app").origin == "github:acme/app#13"


def test_a_push_without_its_commit_is_refused_naming_the_field(bay, hooks):
    push = {"ref": "refs/heads/main", "repository": {"full_name": "acme/main"}}
    with pytest.raises(Invalid, match="after"):
        send(hooks, push, event="push")
