"""GitHub webhooks end to end: payloads shaped like GitHub's, signed with a test secret,
sent to a real server that runs real processes."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from launchbay.domain.webhooks import sign
from tests.integration import pipeline_support
from tests.support import ServerProcess, wait_until

SECRET = "test-webhook-secret-0123456789"
T0 = datetime(2026, 11, 1, 12, tzinfo=UTC)

CONFIG = """\
github:
  secret_env: LAUNCHBAY_TEST_GITHUB_SECRET
  max_body: 65536
  repositories:
    acme/app:
      template: versioned
      service: app
      version: "${short_sha}"
      space: "pr-${number}-${repo}"
      ttl: 2h
    acme/forked:
      template: versioned
      service: app
      allow_forks: false
"""


@pytest.fixture
def server(tmp_path, templates):
    pipeline_support.install(templates, versions=("v1", "main", "aaaaaaa", "bbbbbbb", "ccccccc"))
    (tmp_path / "launchbay.yaml").write_text(CONFIG)
    s = ServerProcess(
        home=tmp_path / "home",
        templates=templates,
        extra_args=["--config", str(tmp_path / "launchbay.yaml"), "--reconcile-interval", "1"],
        extra_env={"LAUNCHBAY_TEST_GITHUB_SECRET": SECRET},
    )
    s.home.mkdir()
    s.start()
    yield s
    s.stop()


def pull_request(
    action: str,
    *,
    number: int = 1,
    sha: str = "aaaaaaa0000",
    at: datetime = T0,
    repo: str = "acme/app",
    head_repo: str | None = None,
) -> dict[str, Any]:
    return {
        "action": action,
        "number": number,
        "pull_request": {
            "number": number,
            "state": "closed" if action == "closed" else "open",
            "updated_at": at.isoformat(),
            "merged": False,
            "head": {
                "sha": sha.ljust(40, "0"),
                "ref": "feature",
                "repo": {"full_name": head_repo or repo},
            },
            "base": {"ref": "main", "repo": {"full_name": repo}},
        },
        "repository": {"full_name": repo, "default_branch": "main"},
        "sender": {"login": "octocat"},
    }


def deliver(
    server: ServerProcess,
    payload: Any,
    *,
    event: str = "pull_request",
    delivery: str | None = None,
    secret: str = SECRET,
    body: bytes | None = None,
    signature: str | None = None,
) -> httpx.Response:
    raw = body if body is not None else json.dumps(payload).encode()
    headers = {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "Content-Type": "application/json",
    }
    if signature is not None or secret:
        headers["X-Hub-Signature-256"] = (
            signature if signature is not None else sign(secret.encode(), raw)
        )
    return httpx.post(
        f"{server.url}/api/v1/webhooks/github", content=raw, headers=headers, timeout=10
    )


def space_or_none(server: ServerProcess, name: str) -> dict[str, Any] | None:
    with server.client() as c:
        response = c.get(f"/api/v1/spaces/{name}")
    return response.json() if response.status_code == 200 else None


def app_version(server: ServerProcess, name: str) -> str | None:
    space = space_or_none(server, name)
    if not space or space["phase"] != "ready" or space["observed_generation"] < space["generation"]:
        return None
    return next(s["version"] for s in space["services"] if s["name"] == "app")


def deliveries(server: ServerProcess) -> list[dict[str, Any]]:
    return server.get_json("/api/v1/webhooks/github/deliveries")


def test_open_synchronize_twice_then_close(server):
    assert deliver(server, pull_request("opened", sha="aaaaaaa0000")).status_code == 202
    wait_until(
        lambda: app_version(server, "pr-1-app") == "aaaaaaa", timeout=60, what="opened at aaaaaaa"
    )
    deliver(server, pull_request("synchronize", sha="bbbbbbb0000", at=T0 + timedelta(minutes=1)))
    wait_until(
        lambda: app_version(server, "pr-1-app") == "bbbbbbb",
        timeout=60,
        what="synchronized to bbbbbbb",
    )
    deliver(server, pull_request("synchronize", sha="ccccccc0000", at=T0 + timedelta(minutes=2)))
    wait_until(
        lambda: app_version(server, "pr-1-app") == "ccccccc",
        timeout=60,
        what="synchronized to ccccccc",
    )
    history = server.get_json("/api/v1/spaces/pr-1-app/deploys")
    assert [(d["from_version"], d["to_version"], d["result"]) for d in history] == [
        ("bbbbbbb", "ccccccc", "succeeded"),
        ("aaaaaaa", "bbbbbbb", "succeeded"),
    ]
    assert (
        history[0]["actor"] == "github"
        and "acme/app#1 (synchronize ccccccc)" in history[0]["source"]
    )
    assert deliver(server, pull_request("closed", at=T0 + timedelta(minutes=3))).status_code == 202
    wait_until(
        lambda: (s := space_or_none(server, "pr-1-app")) and s["phase"] == "deleted",
        timeout=60,
        what="deleted after close",
    )
    trail = server.get_json("/api/v1/audit?actor=github")["items"]  # newest first
    assert {(r["credential"], r["target"], r["outcome"]) for r in trail} == {
        ("pull request acme/app#1", "pr-1-app", "ok")
    }
    assert trail[0]["action"] == "space.delete" and trail[-1]["action"] == "space.apply"


def test_a_late_synchronize_never_resurrects_a_closed_pull_requests_space(server):
    deliver(server, pull_request("opened", number=2))
    wait_until(lambda: app_version(server, "pr-2-app") == "aaaaaaa", timeout=60, what="opened")
    deliver(server, pull_request("closed", number=2, at=T0 + timedelta(minutes=5)))
    wait_until(
        lambda: space_or_none(server, "pr-2-app")["phase"] == "deleted", timeout=60, what="deleted"
    )
    late = deliver(
        server,
        pull_request("synchronize", number=2, sha="bbbbbbb0000", at=T0 + timedelta(minutes=4)),
    )
    assert (
        late.status_code == 202
        and late.json()["status"] == "ignored"
        and "stale" in late.json()["reason"]
    )
    assert space_or_none(server, "pr-2-app")["phase"] == "deleted"


def test_bad_signatures_are_refused_and_change_nothing(server):
    payload = pull_request("opened", number=3)
    body = json.dumps(payload).encode()
    wrong_secret = deliver(server, payload, secret="another-secret-entirely-123")
    other_body = deliver(server, payload, body=body, signature=sign(SECRET.encode(), body + b" "))
    missing = deliver(server, payload, secret="")
    for response in (wrong_secret, other_body, missing):
        assert response.status_code == 401
        assert (
            response.json()["detail"] == "X-Hub-Signature-256 is missing or does not match the body"
        )
    assert space_or_none(server, "pr-3-app") is None
    assert deliveries(server) == []


def test_a_replayed_delivery_is_answered_but_not_acted_on_twice(server):
    delivery = str(uuid.uuid4())
    first = deliver(server, pull_request("opened", number=4), delivery=delivery)
    assert first.json()["status"] == "accepted"
    replay = deliver(server, pull_request("opened", number=4), delivery=delivery)
    assert replay.status_code == 202 and replay.json()["status"] == "duplicate"
    wait_until(lambda: app_version(server, "pr-4-app") == "aaaaaaa", timeout=60, what="opened")
    assert space_or_none(server, "pr-4-app")["generation"] == 1


def test_unknown_repositories_events_and_forks_are_answered_202_with_the_reason_recorded(server):
    unknown_repo = deliver(server, pull_request("opened", repo="acme/unknown"))
    unknown_event = deliver(server, {"repository": {"full_name": "acme/app"}}, event="issues")
    ping = deliver(server, {"zen": "hi", "repository": {"full_name": "acme/app"}}, event="ping")
    fork = deliver(
        server, pull_request("opened", number=9, repo="acme/forked", head_repo="mallory/forked")
    )
    for response in (unknown_repo, unknown_event, ping, fork):
        assert response.status_code == 202 and response.json()["status"] == "ignored", response.text
    reasons = {d["reason"] for d in deliveries(server)}
    assert "repository 'acme/unknown' is not configured" in reasons
    assert "event 'issues' needs nothing" in reasons
    assert "pull requests from forks are not allowed for this repository" in reasons
    assert space_or_none(server, "pr-9-forked") is None


def test_malformed_bodies_and_oversized_bodies_are_refused(server):
    bad = deliver(server, None, body=b"{not json")
    assert bad.status_code == 422 and "not a JSON object" in bad.json()["detail"]
    wrong_shape = deliver(server, {"action": "opened", "repository": {"full_name": "acme/app"}})
    assert (
        wrong_shape.status_code == 422
        and "not a valid pull_request payload: number: field required"
        in wrong_shape.json()["detail"]
    )
    huge = deliver(server, None, body=b"{" + b" " * 70000 + b"}")
    assert huge.status_code == 413
    assert {d["status"] for d in deliveries(server)} == {"rejected"}


def test_without_github_configuration_the_endpoint_says_so(tmp_path, templates):
    s = ServerProcess(home=tmp_path / "plain", templates=templates)
    s.home.mkdir()
    s.start()
    try:
        response = deliver(s, pull_request("opened"))
        assert response.status_code == 404 and "not configured" in response.json()["detail"]
    finally:
        s.stop()


def test_a_server_with_github_but_no_secret_refuses_to_start(tmp_path, templates):
    (tmp_path / "c.yaml").write_text(CONFIG)
    s = ServerProcess(home=tmp_path / "nosecret", templates=templates)
    s.home.mkdir()
    result = s.start_refused("--config", str(tmp_path / "c.yaml"))
    assert result.returncode == 2
    assert "LAUNCHBAY_TEST_GITHUB_SECRET is missing or shorter than 16 characters" in result.stderr


def test_odd_headers_and_bodies_get_a_clear_4xx_never_a_500(server):
    payload = pull_request("opened", number=20)
    raw = json.dumps(payload).encode()
    headers = {"X-GitHub-Event": "pull_request", "X-GitHub-Delivery": str(uuid.uuid4())}
    url = f"{server.url}/api/v1/webhooks/github"
    non_ascii = httpx.post(
        url,
        content=raw,
        headers={**headers, "Content-Type": "application/json"}
        | {"X-Hub-Signature-256": ("sha256=é" + "0" * 63).encode("latin-1")},  # type: ignore[dict-item]
    )
    assert non_ascii.status_code == 401
    assert "www-authenticate" not in non_ascii.headers  # no token would help
    form = httpx.post(
        url,
        content=b"payload=" + raw,
        headers={
            **headers,
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Hub-Signature-256": sign(SECRET.encode(), b"payload=" + raw),
        },
    )
    assert form.status_code == 415
    assert "content type must be application/json" in form.json()["detail"]
    deep = b"[" * 100_000 + b"]" * 100_000
    nested = deliver(server, None, body=deep)
    assert nested.status_code in (413, 422), nested.text
    no_time_zone = pull_request("opened", number=20)
    no_time_zone["pull_request"]["updated_at"] = "2026-11-01T12:00:00"
    refused = deliver(server, no_time_zone)
    assert refused.status_code == 422
    assert "pull_request.updated_at" in refused.json()["detail"]
    assert space_or_none(server, "pr-20-app") is None
    assert "Traceback" not in server.log()


def test_kill_9_with_deliveries_in_flight_every_delivery_ends_and_spaces_match_the_prs(server):
    """30 deliveries over 10 PRs (open, push a commit, and for some a close), sent as fast as
    GitHub would, then kill -9 right after the answers; after the restart every delivery
    ends done or failed (or ignored, as stale) with a reason, and each PR has a space
    exactly when it is open, at its last head."""
    ids = []
    last: dict[int, tuple[str, str]] = {}
    for n in range(100, 110):
        sent = [pull_request("opened", number=n, sha="aaaaaaa")]
        sent.append(pull_request("synchronize", number=n, sha="bbbbbbb", at=T0 + timedelta(1)))
        if n % 3 == 0:
            sent.append(pull_request("closed", number=n, at=T0 + timedelta(2)))
        for payload in sent:
            delivery = str(uuid.uuid4())
            assert deliver(server, payload, delivery=delivery).status_code == 202
            ids.append(delivery)
        last[n] = ("closed", "") if n % 3 == 0 else ("open", "bbbbbbb")
    server.kill()
    server.start()
    wait_until(
        lambda: (
            len(finished := [d for d in deliveries(server) if d["status"] != "accepted"])
            == len(ids)
            and finished
        ),
        timeout=120,
        what="every delivery finished after the restart",
    )
    seen = {d["id"]: d for d in deliveries(server)}
    assert set(ids) <= set(seen)
    assert all(seen[i]["status"] in ("done", "ignored") and seen[i]["reason"] for i in ids), [
        seen[i] for i in ids if seen[i]["status"] not in ("done", "ignored")
    ]
    for n, (state, head) in last.items():
        name = f"pr-{n}-app"
        if state == "open":
            wait_until(
                lambda name=name, head=head: app_version(server, name) == head,
                timeout=60,
                what=f"{name} at {head}",
            )
        else:
            wait_until(
                lambda name=name: (
                    (s := space_or_none(server, name)) is None or s["phase"] == "deleted"
                ),
                timeout=60,
                what=f"{name} gone",
            )


def test_closes_accepted_before_a_kill_9_are_all_done_soon_after_the_restart(server):
    """A restarted server takes back its own unfinished webhook work at once: it once
    waited for the dead run's leases to lapse (30 to 60 s)."""
    for n in range(200, 220):
        assert deliver(server, pull_request("opened", number=n)).status_code == 202
    for n in range(200, 220):
        wait_until(
            lambda n=n: app_version(server, f"pr-{n}-app") == "aaaaaaa",
            timeout=120,
            what=f"PR #{n}'s space",
        )
    closes = [str(uuid.uuid4()) for _ in range(200, 220)]
    for n, delivery in zip(range(200, 220), closes, strict=True):
        closed = pull_request("closed", number=n, at=T0 + timedelta(1))
        assert deliver(server, closed, delivery=delivery).status_code == 202
    server.kill()
    server.start()

    def done() -> bool:
        seen = {d["id"]: d["status"] for d in deliveries(server)}
        return all(seen.get(i) == "done" for i in closes)

    wait_until(done, timeout=10, what="every accepted close done within 10 s of the restart")
    for n in range(200, 220):
        wait_until(
            lambda n=n: (
                (s := space_or_none(server, f"pr-{n}-app")) is None or s["phase"] == "deleted"
            ),
            timeout=60,
            what=f"PR #{n}'s space deleted",
        )


def write_a_wrong_mapping(path: Path) -> None:
    """The config with a repository mapped to a service its template does not have."""
    path.write_text(
        CONFIG.replace(
            "template: versioned\n      service: app\n      version",
            "template: versioned\n      service: nope\n      version",
        )
    )


def test_a_configuration_mistake_stops_the_server_naming_the_file_and_the_key(tmp_path, templates):
    write_a_wrong_mapping(tmp_path / "c.yaml")
    s = ServerProcess(
        home=tmp_path / "badconfig",
        templates=templates,
        extra_env={"LAUNCHBAY_TEST_GITHUB_SECRET": SECRET},
    )
    s.home.mkdir()
    pipeline_support.install(templates, versions=("v1",))
    result = s.start_refused("--config", str(tmp_path / "c.yaml"))
    assert result.returncode == 2, result.stderr
    assert f"{tmp_path / 'c.yaml'}: github.repositories.acme/app.service" in result.stderr
    assert "Traceback" not in result.stderr
    assert not s.data_dir.exists()  # checked before anything was written


def test_every_mistake_of_the_config_is_reported_at_once_and_nothing_is_written(
    tmp_path, templates
):
    """A too-short secret hid the file's real mistake, and the data dir, admin token and
    database were made before the server refused to start."""
    write_a_wrong_mapping(tmp_path / "c.yaml")
    s = ServerProcess(
        home=tmp_path / "short",
        templates=templates,
        extra_env={"LAUNCHBAY_TEST_GITHUB_SECRET": "short"},
    )
    s.home.mkdir()
    pipeline_support.install(templates, versions=("v1",))
    result = s.start_refused("--config", str(tmp_path / "c.yaml"))
    assert result.returncode == 2, result.stderr
    assert "shorter than 16 characters" in result.stderr
    assert "github.repositories.acme/app.service" in result.stderr
    assert not s.data_dir.exists()


@pytest.fixture(scope="module")
def github_api():
    from tests.github_standin import GitHubStandIn, description

    api = GitHubStandIn(description()).start()
    yield api
    api.stop()


def test_the_pull_request_is_told_of_its_space_in_requests_githubs_api_description_accepts(
    tmp_path, templates, github_api
):
    pipeline_support.install(templates, versions=("v1", "aaaaaaa"))
    report = (
        "  report:\n"
        "    token_env: LAUNCHBAY_TEST_GITHUB_TOKEN\n"
        f"    api_url: {github_api.url}\n"
        "    portal_url: https://launchbay.example.com\n"
    )
    (tmp_path / "c.yaml").write_text(
        CONFIG.replace("  max_body: 65536\n", "  max_body: 65536\n" + report)
    )
    s = ServerProcess(
        home=tmp_path / "reports",
        templates=templates,
        extra_args=["--config", str(tmp_path / "c.yaml")],
        extra_env={
            "LAUNCHBAY_TEST_GITHUB_SECRET": SECRET,
            "LAUNCHBAY_TEST_GITHUB_TOKEN": "ghp_test",
        },
    )
    s.home.mkdir()
    s.start()

    def statuses(state: str, environment: str) -> list[Any]:
        return [
            c.body
            for c in github_api.of("repos/create-deployment-status")
            if c.body["state"] == state and c.body["environment"] == environment
        ]

    try:
        deliver(s, pull_request("opened", number=1, sha="aaaaaaa"))  # runs: version exists
        deliver(s, pull_request("opened", number=2, sha="ddddddd"))  # fails: no such version
        wait_until(lambda: statuses("success", "launchbay/pr-1-app"), timeout=60, what="ready told")
        (ready,) = statuses("success", "launchbay/pr-1-app")
        assert ready["environment_url"].startswith("http://127.0.0.1:")
        assert ready["log_url"] == "https://launchbay.example.com/spaces/pr-1-app"
        wait_until(
            lambda: statuses("failure", "launchbay/pr-2-app"), timeout=60, what="failure told"
        )
        assert "failed" in statuses("failure", "launchbay/pr-2-app")[0]["description"]
        deliver(s, pull_request("closed", number=1, at=T0 + timedelta(minutes=1)))
        wait_until(
            lambda: statuses("inactive", "launchbay/pr-1-app"), timeout=60, what="deleted told"
        )
        deployments = github_api.of("repos/create-deployment")
        assert {d.body["ref"][:7] for d in deployments} == {"aaaaaaa", "ddddddd"}
        assert all(d.body["transient_environment"] for d in deployments)
        comments = github_api.of("issues/create-comment")
        assert sorted(c.path for c in comments) == [
            "/repos/acme/app/issues/1/comments",
            "/repos/acme/app/issues/2/comments",
        ]  # one comment per pull request, then edited
        wait_until(
            lambda: any(
                "**deleted**" in c.body["body"] for c in github_api.of("issues/update-comment")
            ),
            timeout=60,
            what="the comment edited to say deleted",
        )
        assert github_api.problems() == []
    finally:
        s.stop()


def test_the_github_stand_in_refuses_what_github_would_refuse(github_api):
    refused = [
        github_api.answer("POST", "/repos/a/b/deployments/1/statuses", b'{"state": "bogus"}'),
        github_api.answer("POST", "/repos/a/b/deployments/x/statuses", b'{"state": "success"}'),
        github_api.answer("POST", "/repos/a/b/deployments", b'{"environment": "e"}'),
        github_api.answer("POST", "/repos/a/b/no-such-thing", b"{}"),
    ]
    assert [status for status, _ in refused] == [422, 422, 422, 404]
    assert len(github_api.problems()) >= 4
    github_api.calls.clear()
