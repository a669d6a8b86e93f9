"""Two server replicas on one real PostgreSQL, as the Helm chart runs them."""

from __future__ import annotations

import re

import httpx

from tests.support import ServerProcess, wait_until

SECRET = "a-session-secret-shared-by-every-replica-0123456789"


def test_two_replicas_share_sessions_and_exactly_one_leads(postgres, tmp_path, templates):
    url = postgres.new_database()
    env = {"LAUNCHBAY_SESSION_SECRET": SECRET}
    replicas = [
        ServerProcess(
            home=tmp_path / name, templates=templates, extra_args=["--db", url], extra_env=env
        )
        for name in ("a", "b")
    ]
    for replica in replicas:
        replica.home.mkdir()
    a, b = replicas
    a.start()
    b.start()
    try:
        leaders = wait_until(
            lambda: (
                [httpx.get(f"{r.url}/readyz").json()["leader"] for r in replicas]
                if any(httpx.get(f"{r.url}/readyz").json()["leader"] for r in replicas)
                else None
            ),
            timeout=30,
            what="a leader",
        )
        assert sorted(leaders) == [False, True]
        token = a.admin_token  # the replica that bootstrapped the empty store wrote it
        with httpx.Client(base_url=a.url) as browser:
            page = browser.get("/signin")
            csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text).group(1)
            assert browser.post("/signin", data={"token": token, "csrf": csrf}).status_code == 303
            cookies = dict(browser.cookies)
        on_b = httpx.get(f"{b.url}/", cookies=cookies)
        assert on_b.status_code == 200 and "admin" in on_b.text  # a session from A works on B
        created = httpx.post(
            f"{b.url}/api/v1/spaces",
            json={"name": "shared", "template": "demo"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert created.status_code == 201
        wait_until(
            lambda: a.space("shared")["phase"] == "ready", timeout=60, what="ready, seen from A"
        )
    finally:
        for replica in replicas:
            replica.stop()
