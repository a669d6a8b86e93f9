"""API keys against a real server: scopes, template and repository limits, expiry,
revocation and rotation, each refused with a line that names the key and its limit."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.integration import templates as extra


@pytest.fixture
def templates(templates):
    extra.install(templates, "QUICK", "SLOW")
    return templates


@pytest.fixture
def ann(server) -> str:
    """A user's first token (all scopes), as `bay user create` prints it."""
    with server.client() as admin:
        made = admin.post("/api/v1/users", json={"name": "ann"})
        made.raise_for_status()
        return str(made.json()["token"])


def make_key(server, token: str, **body) -> httpx.Response:
    body = {"name": "ci", "scopes": ["spaces"], "expires_in": "30d"} | body
    with server.client(token) as c:
        return c.post("/api/v1/keys", json=body)


def key_token(server, token: str, **body) -> str:
    made = make_key(server, token, **body)
    assert made.status_code == 201, made.text
    return str(made.json()["token"])


def create(server, token: str, name: str, template: str = "quick", **more) -> httpx.Response:
    with server.client(token) as c:
        return c.post("/api/v1/spaces", json={"name": name, "template": template, **more})


def test_a_read_key_reads_and_is_refused_every_change_naming_its_scope(server, ann):
    assert create(server, ann, "mine").status_code == 201
    reader = key_token(server, ann, name="look", scopes=["read"])
    with server.client(reader) as c:
        assert c.get("/api/v1/spaces/mine").status_code == 200
        for method, path, body in [
            ("POST", "/api/v1/spaces", {"name": "other", "template": "quick"}),
            ("POST", "/api/v1/spaces/mine/deploy", {"service": "web", "version": "v2"}),
            ("POST", "/api/v1/spaces/mine/extend", {"by": "10m"}),
            ("POST", "/api/v1/spaces/mine/sleep", None),
            ("DELETE", "/api/v1/spaces/mine", None),
        ]:
            answer = c.request(method, path, json=body)
            assert answer.status_code == 403, (path, answer.text)
            assert "key 'look' may not" in answer.json()["detail"]
            assert "its scopes are read" in answer.json()["detail"]
    assert server.space("mine")["phase"] != "deleting"


def test_a_deploy_key_deploys_to_its_users_space_but_creates_nothing(server, ann):
    assert create(server, ann, "mine").status_code == 201
    deployer = key_token(server, ann, name="deployer", scopes=["deploy"])
    with server.client(deployer) as c:
        deployed = c.post("/api/v1/spaces/mine/deploy", json={"service": "web", "version": "v2"})
        assert deployed.status_code == 202, deployed.text
        refused = c.post("/api/v1/spaces", json={"name": "new", "template": "quick"})
        assert refused.status_code == 403
        assert "it needs spaces" in refused.json()["detail"]


def test_a_key_limited_to_a_template_acts_only_on_spaces_of_it(server, ann):
    quick_only = key_token(server, ann, name="quick-only", templates=["quick"])
    assert create(server, quick_only, "fast").status_code == 201
    refused = create(server, quick_only, "slow-one", template="slow")
    assert refused.status_code == 403
    assert "may not create spaces of template 'slow': it is for quick only" in refused.text
    assert create(server, ann, "by-hand", template="slow").status_code == 201
    with server.client(quick_only) as c:
        assert c.delete("/api/v1/spaces/by-hand").status_code == 403
        assert c.delete("/api/v1/spaces/fast").status_code == 202


def test_a_key_limited_to_a_repository_makes_its_spaces_and_touches_no_other(server, ann):
    shop = key_token(server, ann, name="shop-ci", repositories=["Acme/Shop"])
    made = create(server, shop, "pr-1")
    assert made.status_code == 201, made.text
    assert made.json()["repository"] == "acme/shop"
    assert create(server, shop, "pr-2", repository="acme/blog").status_code == 403
    assert create(server, ann, "blog-1", repository="acme/blog").status_code == 201
    assert create(server, ann, "plain").status_code == 201
    with server.client(shop) as c:
        for other in ("blog-1", "plain"):
            answer = c.post(f"/api/v1/spaces/{other}/extend", json={"by": "10m"})
            assert answer.status_code == 403
            assert "it is for acme/shop only" in answer.json()["detail"]
        assert c.post("/api/v1/spaces/pr-1/extend", json={"by": "10m"}).status_code == 200


def test_a_revoked_key_stops_at_once_and_others_go_on(server, ann):
    one, two = key_token(server, ann, name="one"), key_token(server, ann, name="two")
    with server.client(one) as c:
        assert c.get("/api/v1/whoami").json()["key"]["name"] == "one"
    with server.client(two) as c:
        assert c.delete("/api/v1/keys/one").json()["name"] == "one"
        assert [k["name"] for k in c.get("/api/v1/keys").json()] == ["first", "two"]
    with server.client(one) as c:
        answer = c.get("/api/v1/whoami")
    assert answer.status_code == 401
    assert "revoked" in answer.json()["detail"]


def test_a_rotated_key_keeps_its_limits_and_its_old_secret_stops(server, ann):
    old = key_token(server, ann, name="rot", scopes=["deploy"], templates=["quick"])
    with server.client(ann) as c:
        rotated = c.post("/api/v1/keys/rot/rotate")
    assert rotated.status_code == 201
    assert rotated.json()["scopes"] == ["deploy"] and rotated.json()["templates"] == ["quick"]
    with server.client(old) as c:
        assert c.get("/api/v1/whoami").status_code == 401
    with server.client(rotated.json()["token"]) as c:
        assert c.get("/api/v1/whoami").json()["key"]["scopes"] == ["deploy"]


def test_an_expired_key_is_refused_naming_its_expiry_and_the_way_out(server, ann):
    short = key_token(server, ann, name="short", expires_in="2s")
    with server.client(short) as c:
        assert c.get("/api/v1/whoami").status_code == 200
        time.sleep(2.5)
        answer = c.get("/api/v1/whoami")
    assert answer.status_code == 401
    assert "key 'short' of ann expired at" in answer.json()["detail"]
    assert "bay auth token rotate short" in answer.json()["detail"]


def test_the_last_use_is_shown_and_the_secret_never_is(server, ann):
    ci = key_token(server, ann, name="ci")
    with server.client(ci) as c:
        c.get("/api/v1/whoami").raise_for_status()
        listed = {k["name"]: k for k in c.get("/api/v1/keys").json()}
    assert listed["ci"]["last_used_at"] is not None and listed["ci"]["current"] is True
    assert listed["first"]["current"] is False
    assert all("token" not in k for k in listed.values())
    assert ci.encode() not in (server.data_dir / "launchbay.db").read_bytes()


def test_a_key_makes_no_key_that_may_do_more_than_it(server, ann):
    narrow = key_token(server, ann, name="narrow", scopes=["deploy"], expires_in="1d")
    for wider in (
        {"name": "w1", "scopes": ["spaces"], "expires_in": "1h"},
        {"name": "w2", "scopes": ["deploy"], "expires_in": "2d"},
    ):
        answer = make_key(server, narrow, **wider)
        assert answer.status_code == 403, answer.text
        assert "may not make a key that may do more than it" in answer.json()["detail"]
    assert (
        make_key(server, narrow, name="w3", scopes=["deploy"], expires_in="1h").status_code == 201
    )


def test_admin_work_needs_an_admin_and_an_admin_scoped_key(server, ann):
    refused = make_key(server, ann, name="boss", scopes=["admin"])
    assert refused.status_code == 403 and "only an admin" in refused.text
    with server.client(ann) as c:
        assert c.get("/api/v1/keys", params={"user": "admin"}).status_code == 403
    admins_spaces_key = key_token(server, server.admin_token, name="plain", scopes=["spaces"])
    with server.client(admins_spaces_key) as c:
        answer = c.post("/api/v1/users", json={"name": "bob"})
        assert answer.status_code == 403 and "admin scope" in answer.text
        assert c.get("/api/v1/whoami").json()["admin"] is False
    with server.client() as admin:
        theirs = admin.get("/api/v1/keys", params={"user": "ann"}).json()
        assert [k["name"] for k in theirs] == ["first"]
        assert admin.delete("/api/v1/keys/first", params={"user": "ann"}).status_code == 200
    with server.client(ann) as c:
        assert c.get("/api/v1/whoami").status_code == 401


@pytest.mark.parametrize(
    ("body", "status", "said"),
    [
        ({"name": "Bad Name"}, 422, "key name"),
        ({"scopes": ["write"]}, 422, "unknown scope 'write'"),
        ({"scopes": []}, 422, "scopes"),
        ({"expires_in": "91d"}, 422, "at most 90d on this server (auth.key_max_life)"),
        ({"expires_in": "soon"}, 422, "soon"),
        ({"templates": ["No Such"]}, 422, "template name"),
        ({"repositories": ["acme"]}, 422, "write OWNER/NAME"),
        ({"user": ""}, 422, "user name"),
        ({"name": "first"}, 409, "has a key named 'first' already"),
    ],
)
def test_a_bad_key_request_is_refused_and_makes_nothing(server, ann, body, status, said):
    answer = make_key(server, ann, **body)
    assert answer.status_code == status, answer.text
    assert said in answer.text
    with server.client(ann) as c:
        assert [k["name"] for k in c.get("/api/v1/keys").json()] == ["first"]
        assert c.delete("/api/v1/keys/nope").status_code == 404
        assert c.post("/api/v1/keys/Bad%20Name/rotate").status_code == 422


def test_the_first_token_of_a_user_expires_within_the_servers_maximum(server, ann):
    with server.client(ann) as c:
        first = c.get("/api/v1/whoami").json()["key"]
    assert first["name"] == "first" and first["expires_at"] is not None
    with server.client() as admin:
        assert admin.get("/api/v1/whoami").json()["key"]["expires_at"] is None  # bootstrap


def test_bay_auth_token_makes_lists_rotates_and_revokes_keys(server, ann):
    def bay(*args: str, token: str = ann):
        return server.bay(*args, token=token)

    made = bay("auth", "token", "create", "ci", "--scope", "deploy", "--expires", "7d",
               "--template", "quick", "--repository", "acme/shop")  # fmt: skip
    assert made.returncode == 0, made.stderr
    ci = made.stdout.strip()
    assert ci.startswith("lb_") and len(made.stdout.splitlines()) == 1
    listed = bay("auth", "token", "list")
    assert listed.returncode == 0, listed.stderr
    row = next(line for line in listed.stdout.splitlines() if " ci " in line)
    assert "deploy" in row and "quick, acme/shop" in row and "in 6d" in row
    status = bay("auth", "status", token=ci)
    assert status.returncode == 0, status.stderr
    assert "token        from BAY_TOKEN" in status.stdout
    assert "key          ci\nscopes       deploy\ntemplates    quick\n" in status.stdout
    assert "repositories acme/shop\nexpires      " in status.stdout and "(in 6d" in status.stdout
    rotated = bay("auth", "token", "rotate", "ci")
    assert rotated.returncode == 0 and rotated.stdout.strip() != ci
    assert bay("auth", "status", token=ci).returncode != 0
    assert bay("auth", "status", token=rotated.stdout.strip()).returncode == 0
    revoked = bay("auth", "token", "revoke", "ci")
    assert revoked.returncode == 0 and "key 'ci' of ann revoked" in revoked.stdout
    gone = bay("auth", "status", token=rotated.stdout.strip())
    assert gone.returncode == 4 and "revoked" in gone.stderr


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("create", "x", "--scope", "write", "--expires", "1d"), "unknown scope 'write'"),
        (("create", "x", "--scope", "read", "--expires", "1y"), "1y"),
        (("create", "x", "--scope", "read"), "--expires"),
        (("revoke", "nope"), "ann has no key named 'nope'"),
        (("list", "--user", "admin"), "only an admin"),
    ],
)
def test_bay_auth_token_bad_input_is_one_line_and_changes_nothing(server, ann, args, said):
    result = server.bay("auth", "token", *args, token=ann)
    assert result.returncode != 0
    assert said in result.stderr and "Traceback" not in result.stderr
    with server.client(ann) as c:
        assert [k["name"] for k in c.get("/api/v1/keys").json()] == ["first"]


def test_a_limited_key_opens_no_portal_session_which_would_have_its_users_whole_powers(server, ann):
    from launchbay.portal.sessions import SESSION_COOKIE
    from tests.integration.test_portal_http import csrf_of

    limited = {
        "read-only": key_token(server, ann, name="read-only", scopes=["read"]),
        "one-template": key_token(server, ann, name="one-template", templates=["quick"]),
        "admins-spaces": key_token(server, server.admin_token, name="plain", scopes=["spaces"]),
    }
    for name, token in limited.items():
        with server.client(token) as c:
            link = c.post("/api/v1/me/signin-link")
        assert link.status_code == 403 and "is limited" in link.text, name
        with httpx.Client(base_url=server.url) as browser:
            page = browser.get("/signin")
            answer = browser.post("/signin", data={"token": token, "csrf": csrf_of(page)})
            assert answer.status_code == 403 and "is limited" in answer.text, name
            assert SESSION_COOKIE not in browser.cookies
    whole = key_token(server, ann, name="whole", scopes=["spaces"])
    with server.client(whole) as c:
        assert c.post("/api/v1/me/signin-link").status_code == 201
