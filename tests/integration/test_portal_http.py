"""The portal's rules over plain HTTP against a real server: sessions, CSRF, rights, form errors."""

from __future__ import annotations

import contextlib
import html
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import sqlalchemy as sa

from tests.support import ServerProcess


def csrf_of(page: httpx.Response) -> str:
    match = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
    assert match, page.text[:500]
    return match.group(1)


@contextlib.contextmanager
def signed_in(server: ServerProcess, token: str | None = None) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        page = client.get("/signin")
        response = client.post(
            "/signin",
            data={"token": token or server.admin_token, "csrf": csrf_of(page), "next": "/"},
        )
        assert response.status_code == 303 and response.headers["location"] == "/"
        yield client


@pytest.fixture
def admin(server):
    with signed_in(server) as client:
        yield client


def test_pages_need_a_session_and_send_people_to_sign_in(server):
    response = httpx.get(f"{server.url}/spaces/new")
    assert (
        response.status_code == 303
        and response.headers["location"] == "/signin?next=%2Fspaces%2Fnew"
    )


def test_a_wrong_token_is_refused_next_to_the_field(server):
    with httpx.Client(base_url=server.url) as c:
        page = c.get("/signin")
        response = c.post("/signin", data={"token": "lb_wrong", "csrf": csrf_of(page)})
    assert (
        response.status_code == 401
        and 'id="token-error"' in response.text
        and "invalid token" in response.text
    )


def test_no_process_on_the_machine_signs_in_without_a_one_time_link(server):
    """The one-click loopback sign-in is gone: a service on 127.0.0.1 got an admin session
    with it. A link (`bay server` prints one, `bay portal` makes one) works once, within
    its minute."""
    with httpx.Client(base_url=server.url) as c:
        page = c.get("/signin")
        assert "Continue as the local admin" not in page.text and "bay portal" in page.text
        assert c.post("/signin/local", data={"csrf": csrf_of(page)}).status_code in (404, 405)
        assert c.get("/").status_code == 303  # still signed out
    printed = re.search(r"sign in to the portal .*: (\S+/signin/link/\S+)", server.log())
    assert printed, server.log()
    made = server.bay("portal", "--no-open")
    assert made.returncode == 0, made.stderr
    link = made.stdout.split()[0]
    for url in (printed.group(1), link):
        with httpx.Client() as browser:
            assert browser.get(url).status_code == 303
            assert "admin" in browser.get(f"{server.url}/").text
        with httpx.Client() as another:  # the second visit of the same link
            again = another.get(url)
            assert again.status_code == 401 and "used already" in again.text
            assert another.get(f"{server.url}/").status_code == 303


def test_a_sign_in_link_is_refused_after_its_minute(server):
    made = server.bay("portal", "--no-open")
    link = made.stdout.split()[0]
    token = link.rsplit("/", 1)[1]
    from launchbay.domain.auth import token_digest
    from launchbay.store.db import Store, sqlite_url

    store = Store(sqlite_url(server.data_dir))
    with store.write() as s:  # the minute has passed: as the clock would say in 61 s
        s.execute(
            sa.text("UPDATE signin_links SET valid_until = :past WHERE digest = :d"),
            {"past": datetime.now(UTC) - timedelta(seconds=1), "d": token_digest(token)},
        )
    store.close()
    with httpx.Client() as browser:
        late = browser.get(link)
        assert late.status_code == 401 and "expired" in late.text
        assert browser.get(f"{server.url}/").status_code == 303
        unknown = browser.get(f"{server.url}/signin/link/not-a-link")
        assert unknown.status_code == 401 and "not known" in unknown.text


def test_forms_without_or_with_a_forged_csrf_token_are_refused(admin, server):
    server.bay("space", "create", "csrf-1", "--template", "demo")
    for data in ({}, {"csrf": "0" * 64}):
        response = admin.post("/spaces/csrf-1/extend", data={"by": "1h", **data})
        assert response.status_code == 403 and "CSRF token is missing or wrong" in response.text
    with httpx.Client(base_url=server.url) as stranger:  # another browser's token does not fit
        token = csrf_of(stranger.get("/signin"))
    assert admin.post("/spaces/csrf-1/delete", data={"csrf": token}).status_code == 403
    assert server.space("csrf-1")["phase"] != "deleting"


def test_a_user_without_rights_sees_no_actions_and_gets_403(server):
    bob = server.bay("user", "create", "bob").stdout.strip()
    server.bay("space", "create", "admins-1", "--template", "demo", "--wait")
    with signed_in(server, bob) as c:
        page = c.get("/spaces/admins-1")
        assert page.status_code == 200
        assert "Delete…" not in page.text and ">Extend<" not in page.text
        csrf = csrf_of(c.get("/spaces/new"))
        for action in ("extend", "sleep", "delete"):
            response = c.post(f"/spaces/admins-1/{action}", data={"csrf": csrf, "by": "1h"})
            assert response.status_code == 403 and "bob may not" in response.text, action
        assert c.get("/spaces/admins-1/delete").status_code == 403
    assert server.space("admins-1")["phase"] == "ready"


def test_form_errors_are_shown_next_to_their_fields_with_the_apis_message(admin, server):
    csrf = csrf_of(admin.get("/spaces/new"))
    response = admin.post(
        "/spaces/new", data={"csrf": csrf, "template": "demo", "name": "Bad_Name", "ttl": "9h"}
    )
    assert response.status_code == 422
    text = html.unescape(response.text)
    assert re.search(r'id="name-check".*space name \'Bad_Name\' is not valid', text, re.S)
    assert "TTL 9h is over this template's maximum of 8h" in text
    server.bay("space", "create", "taken", "--template", "demo")
    response = admin.post("/spaces/new", data={"csrf": csrf, "template": "demo", "name": "taken"})
    assert response.status_code == 422 and "a space named 'taken' already exists" in html.unescape(
        response.text
    )
    check = admin.get("/fragments/check-name", params={"name": "taken"})
    assert "already exists" in check.text


def test_a_space_that_disappears_shows_that_it_was_deleted(admin, server):
    server.bay("space", "create", "brief", "--template", "demo", "--wait")
    server.bay("space", "delete", "brief", "--wait")
    live = admin.get("/spaces/brief/live", headers={"HX-Request": "true"})
    assert live.status_code == 200 and "This space was deleted" in live.text
    gone = admin.get("/spaces/never-was/live", headers={"HX-Request": "true"})
    assert gone.status_code == 200 and "This space was deleted" in gone.text
    missing = admin.get("/spaces/never-was")
    assert (
        missing.status_code == 404 and "no space named" in missing.text and "<html" in missing.text
    )


def test_the_dashboard_filters_searches_sorts_and_pages(admin, server):
    for name in ("alpha", "beta", "gamma"):
        server.bay("space", "create", name, "--template", "demo")
    page = admin.get("/", params={"q": "et", "sort": "name"})
    assert "space-beta" in page.text and "space-alpha" not in page.text
    mine = admin.get("/fragments/spaces", params={"scope": "mine"})
    assert mine.text.count('id="space-') == 3
    assert admin.get("/", params={"sort": "sideways"}).status_code == 422


def test_templates_page_shows_the_start_order_and_the_cli_command(admin):
    page = admin.get("/templates")
    assert "bay space create NAME --template demo --wait" in page.text
    assert re.search(r"<li>.*kv.*</li>\s*<li>.*api.*</li>\s*<li>.*web.*</li>", page.text, re.S)


def test_static_files_are_served_locally(server):
    assert httpx.get(f"{server.url}/static/vendor/htmx-2.0.11.min.js").status_code == 200
    assert "prefers-color-scheme: dark" in httpx.get(f"{server.url}/static/portal.css").text


def test_the_space_page_says_how_long_it_took_to_get_ready_and_how_its_template_does(admin, server):
    for name in ("timed-1", "timed-2"):
        assert server.bay("space", "create", name, "--template", "demo", "--wait").returncode == 0
    page = admin.get("/spaces/timed-2").text
    assert 'id="ready-in"' in page
    assert re.search(r"\d+\.\d s <span class=\"muted\">\(template demo, last 2: median", page)
    work = re.search(r'<ul class="work"', page)
    assert work is None  # nothing queued or running once it is ready
