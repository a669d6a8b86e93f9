"""Engine + process runtime + API + CLI, against a real `bay server` on a free port."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading

import httpx
import pytest

from tests.integration import templates as extra
from tests.support import ServerProcess, free_port, json_of, labelled_processes, wait_until


@pytest.fixture
def templates(templates):
    extra.install(templates, "SLOW", "SICK", "GHOST", "QUICK")
    return templates


def runtime_root(server: ServerProcess):
    return server.data_dir / "runtime" / "process"


def test_demo_space_web_endpoint_shows_data_from_the_api_and_the_store(server):
    with server.client() as c:
        created = c.post(
            "/api/v1/spaces",
            json={"name": "demo-1", "template": "demo", "params": {"greeting": "Hej"}},
        )
        assert created.status_code == 201, created.text
    space = server.wait_phase("demo-1", {"ready", "failed"})
    assert space["phase"] == "ready", space
    web = next(s for s in space["services"] if s["name"] == "web")
    page = httpx.get(web["endpoints"]["web"])
    assert page.status_code == 200
    assert "Hej from space <code>demo-1</code>" in page.text  # the param went through the API
    assert "Visits: <strong>1</strong>" in page.text  # counted in the key-value store
    assert "Visits: <strong>2</strong>" in httpx.get(web["endpoints"]["web"]).text


def test_cli_creates_waits_shows_lists_and_deletes_a_space(server):
    created = json_of(
        server.bay("space", "create", "cli-1", "--template", "quick", "--wait", "-o", "json")
    )
    assert created["phase"] == "ready"
    shown = json_of(server.bay("space", "show", "cli-1", "-o", "json"))
    assert {
        "name",
        "template",
        "runtime",
        "phase",
        "owner",
        "created_at",
        "expires_at",
        "services",
    } <= set(shown)
    assert shown["owner"] == "admin"
    assert [(s["name"], s["status"], s["version"]) for s in shown["services"]] == [
        ("web", "ready", "main")
    ]
    assert shown["services"][0]["endpoints"]["home"].startswith("http://127.0.0.1:")
    listed = json_of(server.bay("space", "list", "-o", "json"))
    assert [s["name"] for s in listed] == ["cli-1"]
    table = server.bay("space", "list")
    assert "cli-1" in table.stdout and "ready" in table.stdout
    deleted = server.bay("space", "delete", "cli-1", "--wait")
    assert deleted.returncode == 0, deleted.stderr
    assert server.space("cli-1")["phase"] == "deleted"
    assert labelled_processes(runtime_root(server)) == {}


def test_space_with_a_ttl_of_10s_is_deleted_by_the_reaper_with_its_processes(server):
    result = server.bay("space", "create", "short", "--template", "demo", "--ttl", "10s", "--wait")
    assert result.returncode == 0, result.stderr
    assert len(labelled_processes(runtime_root(server), "short")) >= 3
    space = server.wait_phase("short", {"deleted"}, timeout=40)
    events = server.get_json("/api/v1/spaces/short/events")
    assert space["deleted_at"]
    reason = next(e for e in events if e["kind"] == "delete-requested")
    assert reason["message"] == "TTL expired" and reason["actor"] == "launchbay"
    assert labelled_processes(runtime_root(server), "short") == {}


def test_kill_9_while_provisioning_then_restart_converges_with_nothing_orphaned(server):
    with server.client() as c:
        assert (
            c.post("/api/v1/spaces", json={"name": "crash", "template": "slow"}).status_code == 201
        )
    wait_until(
        lambda: labelled_processes(runtime_root(server), "crash"),
        timeout=20,
        what="first process started",
    )
    assert server.space("crash")["phase"] == "provisioning"
    server.kill()
    server.start()
    space = server.wait_phase("crash", {"ready", "failed"}, timeout=60)
    assert space["phase"] == "ready", space
    # Store and reality agree: one process group per recorded, ready service, and nothing else.
    running = labelled_processes(runtime_root(server), "crash")
    services_running = {env["LAUNCHBAY_SERVICE"] for env in running.values()}
    assert services_running == {"first", "second"}
    groups = {os.getpgid(pid) for pid in running}  # each service's group: its sandbox's
    assert len(groups) == 2, running
    for s in space["services"]:
        assert httpx.get(_health_url(server, "crash", s["name"])).status_code == 200


def _health_url(server: ServerProcess, space: str, service: str) -> str:
    import json

    ports = json.loads((runtime_root(server) / space / "ports.json").read_text())
    return f"http://127.0.0.1:{ports[service]}/"


def test_a_service_that_never_becomes_healthy_fails_the_space_with_reason_and_log_tail(server):
    result = server.bay("space", "create", "sick-1", "--template", "sick", "--wait")
    assert result.returncode == 6
    assert (
        "bay: space 'sick-1' is failed: service 'web': not healthy after 2s "
        "(GET /healthz: 404: Error response)" in result.stderr
    )
    space = server.space("sick-1")
    assert space["phase"] == "failed"
    assert "--- last lines of its log ---" in space["reason"]
    assert '"GET /healthz HTTP/1.1" 404' in space["reason"]  # the service's own log lines
    assert space["services"][0]["status"] == "failed"
    assert labelled_processes(runtime_root(server), "sick-1") == {}  # cleaned up
    logs = server.bay("space", "logs", "sick-1", "web")
    assert "about to serve without /healthz" in logs.stdout  # logs stay readable


def test_a_command_that_does_not_exist_fails_the_space_naming_it(server):
    with server.client() as c:
        c.post("/api/v1/spaces", json={"name": "ghost-1", "template": "ghost"}).raise_for_status()
    space = server.wait_phase("ghost-1", {"failed", "ready"})
    assert space["phase"] == "failed"
    assert "command not found: /nonexistent/launchbay-ghost" in space["reason"]


def test_the_reconciler_restarts_a_service_that_died(server):
    assert server.bay("space", "create", "heal", "--template", "quick", "--wait").returncode == 0
    (pid,) = labelled_processes(runtime_root(server), "heal")
    os.kill(pid, signal.SIGKILL)
    wait_until(
        lambda: server.space("heal")["services"][0]["restarts"] == 1, timeout=20, what="restart"
    )
    space = server.wait_phase("heal", {"ready"})
    kinds = [e["kind"] for e in server.get_json("/api/v1/spaces/heal/events")]
    assert "restart" in kinds and "degraded" in kinds
    assert space["services"][0]["status"] == "ready"
    assert list(labelled_processes(runtime_root(server), "heal")) != [pid]


def test_extend_sleep_wake_logs_and_events(server):
    assert server.bay("space", "create", "life", "--template", "quick", "--wait").returncode == 0
    before = server.space("life")["expires_at"]
    assert server.bay("space", "extend", "life", "--by", "30m").returncode == 0
    assert server.space("life")["expires_at"] > before
    over = server.bay("space", "extend", "life", "--by", "5h")
    assert over.returncode == 2 and "at most 2h in all" in over.stderr
    assert server.bay("space", "sleep", "life").returncode == 0
    server.wait_phase("life", {"sleeping"})
    assert labelled_processes(runtime_root(server), "life") == {}
    assert server.bay("space", "wake", "life").returncode == 0
    server.wait_phase("life", {"ready"})
    assert len(labelled_processes(runtime_root(server), "life")) == 1
    logs = server.bay("space", "logs", "life", "web", "--tail", "50")
    assert "launchbay: starting web at main" in logs.stdout
    kinds = [e["kind"] for e in json_of(server.bay("space", "events", "life", "-o", "json"))]
    assert {"created", "provisioning", "ready", "extended", "sleeping"} <= set(kinds)


def test_deleting_a_space_while_it_provisions_stops_everything(server):
    with server.client() as c:
        c.post("/api/v1/spaces", json={"name": "hasty", "template": "slow"}).raise_for_status()
        wait_until(
            lambda: labelled_processes(runtime_root(server), "hasty"), timeout=20, what="started"
        )
        assert c.delete("/api/v1/spaces/hasty").status_code == 202
        assert c.delete("/api/v1/spaces/hasty").status_code == 202  # idempotent
    server.wait_phase("hasty", {"deleted"}, timeout=30)
    assert labelled_processes(runtime_root(server), "hasty") == {}


def test_a_name_is_reusable_only_once_the_old_space_is_gone(server):
    with server.client() as c:
        c.post("/api/v1/spaces", json={"name": "again", "template": "quick"}).raise_for_status()
        c.delete("/api/v1/spaces/again")
        server.wait_phase("again", {"deleted"})
        second = c.post("/api/v1/spaces", json={"name": "again", "template": "quick"})
        assert second.status_code == 201
        history = c.get("/api/v1/spaces", params={"include_deleted": "true"}).json()
        assert [s["phase"] for s in history["items"] if s["name"] == "again"][1] == "deleted"


def test_only_the_owner_or_an_admin_may_change_a_space(server):
    ann = server.bay("user", "create", "ann").stdout.strip()
    bob = server.bay("user", "create", "bob").stdout.strip()
    assert ann.startswith("lb_") and bob != ann
    assert server.bay("space", "create", "anns", "--template", "quick", token=ann).returncode == 0
    for command in (
        ["space", "delete", "anns"],
        ["space", "extend", "anns", "--by", "1h"],
        ["space", "sleep", "anns"],
    ):
        refused = server.bay(*command, token=bob)
        assert refused.returncode == 4, refused.stderr
        assert "bob may not" in refused.stderr and "it belongs to ann" in refused.stderr
    assert server.space("anns")["phase"] in ("pending", "provisioning", "ready")
    assert (
        server.bay("user", "create", "eve", token=bob).returncode == 4
    )  # only admins create users
    assert server.bay("space", "delete", "anns").returncode == 0  # the admin may


def test_bad_requests_get_clear_errors_and_change_nothing(server):
    with server.client() as c:

        def create(**body):
            return c.post("/api/v1/spaces", json={"template": "quick", **body})

        cases = [
            (create(name="Bad_Name"), 422, "is not valid"),
            (create(name="x" * 41), 422, "maximum is 40"),
            (create(name="ok", template="nope"), 404, "no template named 'nope'"),
            (create(name="ok", ttl="3h"), 422, "over this template's maximum of 2h"),
            (create(name="ok", ttl="a while"), 422, "not a duration"),
            (create(name="ok", set={"db.version": "x"}), 422, "unknown service 'db'"),
            (create(name="ok", params={"p": "1"}), 422, "unknown parameter 'p'"),
            (create(name="ok", runtime="kubernetes"), 422, "not enabled"),
            (create(name="ok", colour="red"), 422, "colour: unknown field"),
            (
                c.post(
                    "/api/v1/spaces",
                    content=b"{not json",
                    headers={"content-type": "application/json"},
                ),
                422,
                "not valid JSON",
            ),
            (c.post("/api/v1/spaces", json=["a"]), 422, ""),
            (c.put("/api/v1/spaces", json={}), 405, "Method Not Allowed"),
            (c.get("/api/v1/spaces/nope"), 404, "no space named 'nope'"),
            (c.post("/api/v1/spaces/nope/extend", json={"by": "1h"}), 404, "no space"),
            (c.get("/api/v1/spaces", params={"limit": "0"}), 422, "limit"),
            (c.get("/api/v1/spaces", params={"cursor": "abc"}), 422, "cursor"),
        ]
        for response, status, message in cases:
            assert response.status_code == status, (response.request.url, response.text)
            assert message in response.json()["detail"], response.text
        assert c.get("/api/v1/spaces").json()["total"] == 0


def test_missing_or_invalid_tokens_get_401(server):
    anonymous = httpx.get(f"{server.url}/api/v1/spaces")
    assert anonymous.status_code == 401 and "missing token" in anonymous.json()["detail"]
    assert anonymous.headers["www-authenticate"] == "Bearer"
    wrong = httpx.get(f"{server.url}/api/v1/spaces", headers={"Authorization": "Bearer lb_nope"})
    assert wrong.status_code == 401 and wrong.json()["detail"].startswith("invalid token")
    result = server.bay("space", "list", token="lb_nope")
    assert result.returncode == 4 and result.stderr.startswith(
        f"bay: the token from BAY_TOKEN is not accepted by {server.url} (invalid token: it was never made, or it was revoked): "
    )


def test_concurrent_creates_of_one_name_let_exactly_one_win(server):
    statuses: list[int] = []
    barrier = threading.Barrier(6)

    def create() -> None:
        with server.client() as c:
            barrier.wait()
            statuses.append(
                c.post("/api/v1/spaces", json={"name": "race", "template": "quick"}).status_code
            )

    threads = [threading.Thread(target=create) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [201] + [409] * 5
    server.wait_phase("race", {"ready"})
    assert len(labelled_processes(runtime_root(server), "race")) == 1


def test_admin_token_is_written_once_with_mode_0600(server):
    token_file = server.data_dir / "admin-token"
    assert oct(token_file.stat().st_mode & 0o777) == "0o600"
    first = token_file.read_text()
    server.stop()
    server.start()
    assert token_file.read_text() == first
    assert httpx.get(f"{server.url}/readyz").json() == {"status": "ready", "leader": True}


def test_a_server_that_cannot_listen_changes_no_context_token_or_state_file(server, tmp_path):
    config = server.home / "config" / "launchbay" / "config.json"
    before = config.read_text()
    state = (server.data_dir / "server.json").read_text()
    other = tmp_path / "other-data"
    result = server.bay(
        "server",
        "--templates",
        str(server.templates),
        "--data-dir",
        str(other),
        "--port",
        str(server.port),
        token="",
        timeout=60,
    )
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{server.port}" in result.stderr
    assert "Traceback" not in result.stderr
    assert config.read_text() == before
    assert not (other / "admin-token").exists()
    assert (server.data_dir / "server.json").read_text() == state
    assert server.bay("space", "list").returncode == 0  # the CLI still reaches the first


def test_one_server_per_data_dir_and_the_second_touches_nothing(server):
    state = (server.data_dir / "server.json").read_text()
    result = server.bay(
        "server",
        "--templates",
        str(server.templates),
        "--data-dir",
        str(server.data_dir),
        "--port",
        str(free_port()),
        token="",
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert "another Launchbay server uses the data dir" in result.stderr
    assert (server.data_dir / "server.json").read_text() == state
    assert server.bay("space", "list").returncode == 0


def test_a_server_on_every_address_records_an_address_that_answers(tmp_path, templates):
    s = ServerProcess(home=tmp_path / "any", templates=templates, extra_args=["--host", "::"])
    s.home.mkdir()
    s.start()
    try:
        recorded = json.loads((s.data_dir / "server.json").read_text())["url"]
        assert recorded == f"http://127.0.0.1:{s.port}"
        assert httpx.get(f"{recorded}/healthz").status_code == 200
    finally:
        s.stop()


def test_a_service_that_keeps_dying_is_failed_after_its_restarts_and_the_space_says_why(
    server, templates
):
    (templates / "brittle.yaml").write_text(
        f"""\
name: brittle
ttl: {{default: 1h, max: 2h}}
services:
  web:
    health: {{tcp: true, interval: 100ms, timeout: 20s}}
    process:
      command: [timeout, "2", {sys.executable}, -m, http.server, "${{services.web.port}}", --bind, 127.0.0.1]
"""
    )
    assert (
        server.bay("space", "create", "brittle", "--template", "brittle", "--wait").returncode == 0
    )
    space = wait_until(
        lambda: (s := server.space("brittle"))["services"][0]["status"] == "failed" and s,
        timeout=90,
        what="the service failed for good",
    )
    assert space["services"][0]["restarts"] == 3
    assert space["phase"] == "degraded"
    assert "exited too often" in space["reason"] and "web failed" in space["reason"]
    assert "exited with code 124" in space["services"][0]["detail"]
