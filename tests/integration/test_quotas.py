"""Quotas against real servers: a create over a user's quota is refused naming the quota,
its value, what uses it and how to free it; two replicas on one PostgreSQL admit exactly
the quota of concurrent creates."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.integration import templates as extra
from tests.support import ServerProcess


@pytest.fixture
def templates(templates):
    extra.install(templates, "QUICK", "SLOW")
    return templates


def new_user(server, name: str) -> str:
    with server.client() as admin:
        made = admin.post("/api/v1/users", json={"name": name})
        made.raise_for_status()
        return str(made.json()["token"])


def create(server, token: str, name: str, template: str = "quick") -> httpx.Response:
    with server.client(token) as c:
        return c.post("/api/v1/spaces", json={"name": name, "template": template})


def set_quota(server, user: str, **body) -> httpx.Response:
    with server.client() as admin:
        return admin.put(f"/api/v1/quotas/users/{user}", json=body)


def test_a_create_over_the_quota_is_refused_naming_it_and_a_delete_frees_room(server):
    ann = new_user(server, "ann")
    assert set_quota(server, "ann", spaces=2).json()["spaces"] == 2
    assert create(server, ann, "one").status_code == 201
    assert create(server, ann, "two").status_code == 201
    refused = create(server, ann, "three")
    assert refused.status_code == 403
    assert refused.json()["detail"] == (
        "ann may have at most 2 spaces at once (quota 'spaces', set by an admin) and has 2: "
        "one, two; delete one (`bay space delete NAME`) or ask an admin to raise it "
        "(`bay quota set`)"
    )
    with server.client(ann) as c:
        assert c.get("/api/v1/spaces/three").status_code == 404  # nothing was made
        assert c.delete("/api/v1/spaces/one").status_code == 202
    assert create(server, ann, "three").status_code == 201


def test_a_quota_set_below_use_is_taken_and_creates_wait_until_under_it(server):
    ann = new_user(server, "ann")
    for name in ("a", "b"):
        assert create(server, ann, name).status_code == 201
    lowered = set_quota(server, "ann", spaces=1)
    assert lowered.status_code == 200 and lowered.json()["using"] == ["a", "b"]
    with server.client(ann) as c:
        c.delete("/api/v1/spaces/a").raise_for_status()
        assert create(server, ann, "c").status_code == 403  # one left, and the quota is one
        c.delete("/api/v1/spaces/b").raise_for_status()
    assert create(server, ann, "c").status_code == 201


def test_an_exempt_user_is_not_counted(server):
    ann = new_user(server, "ann")
    set_quota(server, "ann", spaces=0).raise_for_status()
    assert create(server, ann, "x").status_code == 403
    set_quota(server, "ann", spaces=0, exempt=True).raise_for_status()
    assert create(server, ann, "x").status_code == 201


def test_the_servers_default_and_exempt_templates_come_from_its_settings(tmp_path, templates):
    config = tmp_path / "launchbay.yaml"
    config.write_text("quotas:\n  spaces_per_user: 1\n  exempt_templates: [slow]\n")
    server = ServerProcess(
        home=tmp_path / "home", templates=templates, extra_args=["--config", str(config)]
    )
    server.home.mkdir()
    server.start()
    try:
        ann = new_user(server, "ann")
        assert create(server, ann, "first").status_code == 201
        refused = create(server, ann, "second")
        assert refused.status_code == 403 and "the server's default" in refused.text
        assert create(server, ann, "slow-one", template="slow").status_code == 201
        with server.client(ann) as c:
            mine = c.get("/api/v1/quotas/users/ann").json()
        assert mine == {
            "user": "ann",
            "spaces": 1,
            "set_by_admin": False,
            "exempt": False,
            "using": ["first", "slow-one"],
        }
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("who", "method", "path", "body", "status", "said"),
    [
        ("admin", "PUT", "/api/v1/quotas/users/ann", {"spaces": -1}, 422, "spaces"),
        ("admin", "PUT", "/api/v1/quotas/users/ann", {"spaces": "5"}, 422, "spaces"),
        ("admin", "PUT", "/api/v1/quotas/users/nobody", {"spaces": 1}, 404, "no user named"),
        ("ann", "PUT", "/api/v1/quotas/users/ann", {"spaces": 99}, 403, "only an admin"),
        ("ann", "GET", "/api/v1/quotas/users/admin", None, 403, "may not read the quotas"),
        ("admin", "GET", "/api/v1/quotas/users/Bad%20Name", None, 422, "user name"),
    ],
)
def test_bad_quota_requests_are_refused_and_change_nothing(
    server, who, method, path, body, status, said
):
    ann = new_user(server, "ann")
    with server.client(ann if who == "ann" else None) as c:
        answer = c.request(method, path, json=body)
    assert answer.status_code == status and said in answer.text
    with server.client(ann) as c:
        assert c.get("/api/v1/quotas/users/ann").json()["spaces"] is None


def test_bay_quota_shows_and_sets(server):
    ann = new_user(server, "ann")
    assert server.bay("quota", "set", "ann", "--spaces", "3").returncode == 0
    create(server, ann, "q1").raise_for_status()
    shown = server.bay("quota", "show", token=ann)
    assert shown.returncode == 0, shown.stderr
    assert "spaces   1 of 3 (set by an admin)" in shown.stdout and "q1" in shown.stdout
    for args in (("set", "ann"), ("set", "ann", "--spaces", "2", "--default")):
        bad = server.bay("quota", *args)
        assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1, bad.stderr
    refused = server.bay("quota", "set", "ann", "--spaces", "9", token=ann)
    assert refused.returncode != 0 and "only an admin" in refused.stderr


def test_twenty_concurrent_creates_on_two_replicas_admit_exactly_the_quota(
    postgres, tmp_path, templates
):
    url = postgres.new_database()
    replicas = [
        ServerProcess(home=tmp_path / n, templates=templates, extra_args=["--db", url])
        for n in ("a", "b")
    ]
    for replica in replicas:
        replica.home.mkdir()
        replica.start()
    a, b = replicas
    try:
        token = a.admin_token  # the replica that made the empty store's admin wrote it
        with httpx.Client(base_url=a.url, headers={"Authorization": f"Bearer {token}"}) as c:
            ann = c.post("/api/v1/users", json={"name": "ann"}).json()["token"]
            c.put("/api/v1/quotas/users/ann", json={"spaces": 5}).raise_for_status()

        def one(i: int) -> int:
            replica = replicas[i % 2]
            answer = httpx.post(
                f"{replica.url}/api/v1/spaces",
                json={"name": f"burst-{i}", "template": "quick"},
                headers={"Authorization": f"Bearer {ann}"},
                timeout=60,
            )
            assert answer.status_code in (201, 403), answer.text
            return answer.status_code

        with ThreadPoolExecutor(max_workers=20) as pool:
            answers = list(pool.map(one, range(20)))
        assert answers.count(201) == 5 and answers.count(403) == 15
        with httpx.Client(base_url=b.url, headers={"Authorization": f"Bearer {ann}"}) as c:
            assert len(c.get("/api/v1/quotas/users/ann").json()["using"]) == 5
    finally:
        for replica in replicas:
            replica.stop()
