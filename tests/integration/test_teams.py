"""Teams and roles against a real server: the authorisation table (every role, every change,
on a space of the team, of another team and of no team) through the API and the portal,
and each bad input refused with nothing changed."""

from __future__ import annotations

import httpx
import pytest

from tests.integration import templates as extra
from tests.integration.test_portal_http import csrf_of, signed_in

# Each user's place: payments has a member who owns the space, another member, a viewer
# and an admin; search has a member; loner is in no team.
PLACES = {
    "owner": ("payments", "member"),
    "mate": ("payments", "member"),
    "watcher": ("payments", "viewer"),
    "lead": ("payments", "admin"),
    "outsider": ("search", "member"),
    "loner": None,
}
# Who may change the payments space that `owner` made: its owner, the team's admin, and a
# server admin; nobody else, whatever their role elsewhere.
ALLOWED = {"owner", "lead", "admin"}
CHANGES = [
    ("POST", "/deploy", {"service": "web", "version": "v2"}),
    ("POST", "/extend", {"by": "10m"}),
    ("POST", "/sleep", None),
    ("POST", "/retry", None),
    ("POST", "/recreate", None),
    ("DELETE", "", None),
]


@pytest.fixture
def templates(templates):
    extra.install(templates, "QUICK")
    return templates


@pytest.fixture
def people(server) -> dict[str, str]:
    tokens = {"admin": server.admin_token}
    with server.client() as admin:
        for team in ("payments", "search"):
            admin.post("/api/v1/teams", json={"name": team}).raise_for_status()
        for user, place in PLACES.items():
            tokens[user] = admin.post("/api/v1/users", json={"name": user}).json()["token"]
            if place:
                team, role = place
                answer = admin.put(f"/api/v1/teams/{team}/members/{user}", json={"role": role})
                answer.raise_for_status()
    return tokens


def create(server, token: str, name: str, **more) -> httpx.Response:
    with server.client(token) as c:
        return c.post("/api/v1/spaces", json={"name": name, "template": "quick", **more})


def test_the_authorisation_table_of_a_teams_space_through_the_api(server, people):
    made = create(server, people["owner"], "pay-1")
    assert made.status_code == 201 and made.json()["team"] == "payments"
    table: dict[tuple[str, str], bool] = {}
    for who in sorted(people, key=lambda w: (w in ALLOWED, w)):  # refusals before deletes
        with server.client(people[who]) as c:
            for method, tail, body in CHANGES:
                if method == "DELETE" and who in ALLOWED and who != "owner":
                    continue  # the owner's delete comes last
                answer = c.request(method, f"/api/v1/spaces/pay-1{tail}", json=body)
                assert answer.status_code < 500, answer.text
                table[(who, f"{method}{tail}")] = answer.status_code != 403
                if answer.status_code == 403:
                    assert f"{who} may not" in answer.json()["detail"]
    expected = {key: key[0] in ALLOWED for key in table}
    assert table == expected


def test_creating_in_a_team_takes_a_member_and_a_space_goes_to_its_creators_team(server, people):
    assert create(server, people["mate"], "m-1", team="payments").json()["team"] == "payments"
    for who, said in [
        ("watcher", "watcher may not create spaces in team 'payments': that takes a member "
                    "of the team, and watcher is a viewer of it"),
        ("outsider", "outsider is not in it"),
        ("loner", "loner is not in it"),
    ]:  # fmt: skip
        answer = create(server, people[who], f"{who}-1", team="payments")
        assert answer.status_code == 403 and said in answer.json()["detail"]
    assert create(server, people["loner"], "loner-own").json()["team"] == ""
    assert create(server, people["watcher"], "watcher-own").json()["team"] == ""
    with server.client() as admin:
        admin.put("/api/v1/teams/search/members/mate", json={"role": "member"})
    assert create(server, people["mate"], "m-2").json()["team"] == ""  # two teams: none


def test_a_space_of_no_team_is_its_owners_and_the_server_admins_only(server, people):
    assert create(server, people["loner"], "solo").status_code == 201
    for who, allowed in [("lead", False), ("owner", False), ("admin", True), ("loner", True)]:
        with server.client(people[who]) as c:
            answer = c.post("/api/v1/spaces/solo/extend", json={"by": "10m"})
        assert (answer.status_code != 403) is allowed, (who, answer.text)


def test_the_portal_offers_and_takes_a_change_only_from_those_the_table_allows(server, people):
    create(server, people["owner"], "pay-2").raise_for_status()
    for who in ("lead", "mate", "watcher"):
        with signed_in(server, people[who]) as browser:
            page = browser.get("/spaces/pay-2")
            allowed = who in ALLOWED
            assert (">Extend<" in page.text) is allowed, who
            csrf = csrf_of(page)
            answer = browser.post("/spaces/pay-2/extend", data={"csrf": csrf, "by": "1h"})
            assert (answer.status_code != 403) is allowed, (who, answer.status_code)


def test_team_admins_manage_members_and_members_do_not(server, people):
    with server.client(people["lead"]) as c:
        added = c.put("/api/v1/teams/payments/members/loner", json={"role": "viewer"})
        assert added.status_code == 200
        assert {"user": "loner", "role": "viewer"} in added.json()["members"]
        assert c.delete("/api/v1/teams/payments/members/loner").status_code == 200
        assert (
            c.put("/api/v1/teams/search/members/loner", json={"role": "admin"}).status_code == 403
        )
    with server.client(people["mate"]) as c:
        refused = c.put("/api/v1/teams/payments/members/loner", json={"role": "admin"})
        assert refused.status_code == 403 and "that takes an admin of the team" in refused.text
        mine = {t["name"]: t["my_role"] for t in c.get("/api/v1/teams").json()}
    assert mine == {"payments": "member", "search": None}


@pytest.mark.parametrize(
    ("who", "method", "path", "body", "status", "said"),
    [
        ("admin", "POST", "/api/v1/teams", {"name": "Bad Name"}, 422, "team name"),
        ("admin", "POST", "/api/v1/teams", {"name": "payments"}, 409, "exists already"),
        ("lead", "POST", "/api/v1/teams", {"name": "new"}, 403, "only an admin"),
        ("admin", "PUT", "/api/v1/teams/payments/members/loner", {"role": "boss"}, 422, "role"),
        ("admin", "PUT", "/api/v1/teams/nope/members/loner", {"role": "member"}, 404, "no team"),
        ("admin", "PUT", "/api/v1/teams/payments/members/nobody", {"role": "member"}, 404,
         "no user named"),
        ("admin", "DELETE", "/api/v1/teams/payments/members/loner", None, 404, "not in team"),
        ("admin", "POST", "/api/v1/spaces", {"name": "x", "template": "quick", "team": "nope"},
         404, "no team named 'nope'"),
    ],
)  # fmt: skip
def test_bad_team_requests_are_refused_and_change_nothing(
    server, people, who, method, path, body, status, said
):
    with server.client(people[who]) as c:
        before = c.get("/api/v1/teams").json()
        answer = c.request(method, path, json=body)
        assert answer.status_code == status and said in answer.text, answer.text
        assert c.get("/api/v1/teams").json() == before


def test_a_team_that_owns_spaces_is_not_removed_until_they_are_gone(server, people):
    create(server, people["owner"], "keeps").raise_for_status()
    with server.client() as admin:
        refused = admin.delete("/api/v1/teams/payments")
        assert refused.status_code == 409 and "owns 1 live spaces (keeps)" in refused.text
        assert admin.get("/api/v1/teams/payments").status_code == 200
        admin.delete("/api/v1/spaces/keeps").raise_for_status()
        assert admin.delete("/api/v1/teams/payments").status_code == 204
        assert admin.get("/api/v1/teams/payments").status_code == 404


def test_bay_team_makes_a_team_sets_roles_and_says_why_it_refuses(server, people):
    made = server.bay("team", "create", "infra")
    assert made.returncode == 0 and "team     infra" in made.stdout
    added = server.bay("team", "set", "infra", "loner", "--role", "admin")
    assert added.returncode == 0 and "admin    loner" in added.stdout
    listed = server.bay("team", "list", token=people["loner"])
    assert "infra" in listed.stdout and listed.stdout.splitlines()[1].endswith("admin")
    bad = server.bay("team", "set", "infra", "mate", "--role", "boss")
    assert bad.returncode != 0 and "unknown role 'boss'" in bad.stderr
    assert "Traceback" not in bad.stderr
    refused = server.bay("team", "delete", "payments", token=people["lead"])
    assert refused.returncode != 0 and "only an admin" in refused.stderr
    gone = server.bay("team", "delete", "infra")
    assert gone.returncode == 0 and "team 'infra' removed" in gone.stdout
