"""The audit trail against a real server: every change asked by a signed-in caller, through
the API or the portal, leaves exactly one record naming its actor and credential, with its
outcome; the JSON-lines export reads back; old records are forgotten."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from launchbay.domain.auth import Actor
from launchbay.engine.audit import Audit, Entry, Filters
from launchbay.store.db import Store, sqlite_url
from tests.integration import templates as extra
from tests.integration.test_portal_http import csrf_of, signed_in


@pytest.fixture
def templates(templates):
    extra.install(templates, "QUICK")
    return templates


def trail(server, token=None, **query) -> list[tuple[str, str, str, str, str]]:
    with server.client(token) as c:
        page = c.get("/api/v1/audit", params={"limit": 500, **query})
        assert page.status_code == 200, page.text
    return [
        (r["actor"], r["credential"], r["action"], r["target"], r["outcome"])
        for r in reversed(page.json()["items"])
    ]


def test_every_change_leaves_exactly_one_record_naming_its_actor_and_outcome(server):
    with server.client() as admin:
        ann = admin.post("/api/v1/users", json={"name": "ann"}).json()["token"]
        bob = admin.post("/api/v1/users", json={"name": "bob"}).json()["token"]
    with server.client(ann) as c:
        assert c.post("/api/v1/spaces", json={"name": "a1", "template": "quick"}).is_success
        assert c.get("/api/v1/spaces/a1").is_success  # a read: not a change
        c.post("/api/v1/spaces/a1/deploy", json={"service": "web", "version": "v2"})
        c.post("/api/v1/spaces/a1/extend", json={"by": "10m"})
        assert c.post("/api/v1/spaces/a1/retry").status_code == 409
        body = {"name": "ci", "scopes": ["read"], "expires_in": "1d"}
        ci = c.post("/api/v1/keys", json=body).json()["token"]
    with server.client(ci) as c:
        assert c.delete("/api/v1/spaces/a1").status_code == 403
    with server.client(bob) as c:
        assert c.delete("/api/v1/spaces/a1").status_code == 403
        assert c.post("/api/v1/spaces/nope/sleep").status_code == 404
    with server.client("lb_not-a-token") as c:
        assert c.delete("/api/v1/spaces/a1").status_code == 401  # no caller: not recorded
    with server.client() as admin:
        admin.post("/api/v1/keys/ci/rotate", params={"user": "ann"}).raise_for_status()
        admin.delete("/api/v1/keys/ci", params={"user": "ann"}).raise_for_status()
        assert admin.delete("/api/v1/spaces/a1").status_code == 202
    assert trail(server) == [
        ("admin", "key bootstrap", "user.create", "ann", "ok"),
        ("admin", "key bootstrap", "user.create", "bob", "ok"),
        ("ann", "key first", "space.create", "a1", "ok"),
        ("ann", "key first", "space.deploy", "a1", "ok"),
        ("ann", "key first", "space.extend", "a1", "ok"),
        ("ann", "key first", "space.retry", "a1", "conflict"),
        ("ann", "key first", "key.create", "ci", "ok"),
        ("ann", "key ci", "space.delete", "a1", "refused"),
        ("bob", "key first", "space.delete", "a1", "refused"),
        ("bob", "key first", "space.sleep", "nope", "not found"),
        ("admin", "key bootstrap", "key.rotate", "ci", "ok"),
        ("admin", "key bootstrap", "key.revoke", "ci", "ok"),
        ("admin", "key bootstrap", "space.delete", "a1", "ok"),
    ]
    assert [r[0] for r in trail(server, bob)] == ["bob", "bob"]  # anyone else: their own
    assert trail(server, bob, actor="ann") == []
    assert [r[2] for r in trail(server, outcome="refused")] == ["space.delete", "space.delete"]


def test_portal_sign_ins_and_actions_are_recorded_with_the_session(server):
    with server.client() as admin:
        ann = admin.post("/api/v1/users", json={"name": "ann"}).json()["token"]
    with server.client(ann) as c:
        c.post("/api/v1/spaces", json={"name": "p1", "template": "quick"}).raise_for_status()
    with signed_in(server, ann) as browser:
        csrf = csrf_of(browser.get("/spaces/p1"))
        assert browser.post("/spaces/p1/extend", data={"csrf": csrf, "by": "1h"}).status_code < 400
        browser.post("/signout", data={"csrf": csrf})
    assert trail(server)[-3:] == [
        ("ann", "key first", "signin", "", "ok"),
        ("ann", "portal session", "space.extend", "p1", "ok"),
        ("ann", "portal session", "signout", "", "ok"),
    ]


def test_the_json_lines_export_reads_back_as_the_api_gives_it(server):
    for name in ("x1", "x2", "x3"):
        server.bay("space", "create", name, "--template", "quick")
    exported = server.bay("audit", "-o", "jsonl", "--all")
    assert exported.returncode == 0, exported.stderr
    lines = [json.loads(line) for line in exported.stdout.splitlines()]
    with server.client() as c:
        assert lines == c.get("/api/v1/audit").json()["items"]
    assert [r["target"] for r in lines] == ["x3", "x2", "x1"]
    paged = server.bay("audit", "--limit", "2", "-o", "json")
    assert [r["target"] for r in json.loads(paged.stdout)] == ["x3", "x2"]
    table = server.bay("audit", "--action", "space.create")
    assert table.returncode == 0 and "space.create" in table.stdout and "x1" in table.stdout


@pytest.mark.parametrize(
    ("query", "said"),
    [
        ({"cursor": "abc"}, "query.cursor"),
        ({"limit": 0}, "limit"),
        ({"limit": 501}, "limit"),
        ({"since": "soon"}, "query.since"),
        ({"format": "xml"}, "format"),
        ({"actor": "x" * 64}, "actor"),
    ],
)
def test_a_bad_audit_query_is_refused_clearly(server, query, said):
    with server.client() as c:
        answer = c.get("/api/v1/audit", params=query)
    assert answer.status_code == 422 and said in answer.text


def test_bay_audit_bad_options_are_one_line(server):
    for args in (("-o", "xml"), ("--limit", "0"), ("--since", "soon")):
        result = server.bay("audit", *args)
        assert result.returncode != 0 and "Traceback" not in result.stderr, args
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_records_older_than_the_trail_keeps_are_forgotten(tmp_path):
    now = [datetime(2026, 12, 8, tzinfo=UTC)]
    store = Store(sqlite_url(tmp_path))
    store.migrate()
    audit = Audit(store, clock=lambda: now[0], keep=timedelta(days=30))
    for age in (40, 31, 29, 1):
        audit.record(
            Entry(
                at=now[0] - timedelta(days=age), actor="ann", credential="key first",
                via="api", action="space.create", target=f"s{age}", address="127.0.0.1",
                outcome="ok", status=201,
            )
        )  # fmt: skip
    assert audit.prune() == 2
    left, _ = audit.page(Filters(), viewer=Actor("root", is_admin=True))
    assert [e.target for e in left] == ["s1", "s29"]
    store.close()


def test_the_portal_page_shows_an_admin_every_record_and_a_user_their_own(server):
    with server.client() as admin:
        ann = admin.post("/api/v1/users", json={"name": "ann"}).json()["token"]
    with server.client(ann) as c:
        c.post("/api/v1/spaces", json={"name": "mine", "template": "quick"}).raise_for_status()
    with signed_in(server) as browser:
        page = browser.get("/audit")
        assert page.status_code == 200
        assert "user.create" in page.text and "space.create" in page.text
        only = browser.get("/audit", params={"action": "space.create"}).text
        assert "mine" in only and "user.create" not in only
    with signed_in(server, ann) as browser:
        page = browser.get("/audit")
        assert "space.create" in page.text and "user.create" not in page.text
