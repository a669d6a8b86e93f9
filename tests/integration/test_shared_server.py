"""A shared server that no user can take over, freeze or fill: against a real server."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.integration import templates as extra
from tests.support import ServerProcess, labelled_processes, wait_until, write_template

# A template that lists every env name as overridable, but is not marked trusted.
OPEN = """\
name: open
ttl: {default: 1h, max: 2h}
services:
  kv:
    overridable: {env: ["*"]}
    health: {tcp: true, interval: 100ms, timeout: 20s}
    process:
      command: [python3, -m, http.server, "${services.kv.port}", --bind, 127.0.0.1]
"""


@pytest.fixture
def templates(templates):
    extra.install(templates, "QUICK")
    return templates


@pytest.fixture
def server_args() -> list[str]:
    return []


@pytest.fixture
def limited_server(tmp_path, templates, server_args):
    """A server of its own, started with the test's `server_args`."""
    extra.install(templates, "QUICK")
    s = ServerProcess(
        home=tmp_path / "limited",
        templates=templates,
        extra_args=server_args,
        extra_env={"SERVER_SECRET": "not-for-services"},
    )
    s.home.mkdir()
    s.start()
    yield s
    s.stop()


@pytest.fixture
def alice(request) -> str:
    server = request.getfixturevalue(
        "limited_server" if "limited_server" in request.fixturenames else "server"
    )
    created = server.bay("user", "create", "alice")
    assert created.returncode == 0, created.stderr
    return created.stdout.strip()


@pytest.mark.parametrize(
    "setting",
    [
        "kv.env.PYTHONWARNINGS=all:0:antigravity.x:0:0",
        "kv.env.BROWSER=/bin/sh -c 'echo STOLEN=$(cat {data}/admin-token)' #%s",
        "kv.env.LD_PRELOAD=/tmp/evil.so",
        "kv.env.BASH_ENV=/tmp/evil.sh",
        "kv.env.PATH=/tmp/evil",
    ],
)
def test_a_non_admin_cannot_make_a_service_run_code_through_env_overrides(
    server, templates, alice, setting
):
    write_template(templates, "open", OPEN)
    setting = setting.format(data=server.data_dir)
    for template in ("open", "demo"):
        result = server.bay(
            "space", "create", "stolen", "--template", template, "--set", setting, token=alice
        )
        assert result.returncode == 2, result.stdout + result.stderr
        reason = "trusted: true" if template == "open" else "not overridable"
        assert reason in result.stderr and "Traceback" not in result.stderr
    with server.client() as c:
        assert c.get("/api/v1/spaces/stolen").status_code == 404  # nothing was written


def test_what_the_template_allows_is_still_allowed(server, templates, alice):
    write_template(templates, "open", OPEN)
    result = server.bay(
        "space", "create", "fine", "--template", "open", "--set", "kv.env.FEATURE_X=1",
        "--wait", token=alice,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert server.space("fine")["overrides"] == {"kv": {"env.FEATURE_X": "1"}}


def server_threads_and_fds(server: ServerProcess) -> tuple[int, int]:
    pid = server.process.pid
    status = Path(f"/proc/{pid}/status").read_text()
    threads = int(
        next(line.split()[1] for line in status.splitlines() if line.startswith("Threads:"))
    )
    return threads, len(list(Path(f"/proc/{pid}/fd").iterdir()))


def open_follow(server: ServerProcess, path: str, token: str) -> socket.socket:
    """A follower as a client that will vanish: a raw socket, closed without a goodbye."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    sock.sendall(
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
        f"Authorization: Bearer {token}\r\n\r\n".encode()
    )
    assert sock.recv(12) == b"HTTP/1.1 200"
    return sock


def follows_open(server: ServerProcess) -> int:
    metrics = httpx.get(f"{server.url}/metrics").text
    return int(float(re.search(r"^launchbay_log_follows (\S+)$", metrics, re.M).group(1)))


@pytest.mark.parametrize("server_args", [["--max-follows", "60", "--max-follows-per-user", "50"]])
def test_followers_of_a_quiet_log_that_vanish_free_the_server_and_the_caps_hold(
    limited_server, alice
):
    server = limited_server
    assert server.bay("space", "create", "quiet", "--template", "quick", "--wait").returncode == 0
    assert server.bay("space", "sleep", "quiet").returncode == 0  # its log never grows now
    path = "/api/v1/spaces/quiet/logs/web?follow=true&tail=1"
    before = server_threads_and_fds(server)
    followers = [open_follow(server, path, server.admin_token) for _ in range(50)]
    with server.client() as c:
        assert c.get("/api/v1/spaces").status_code == 200  # 50 quiet follows freeze nothing
        refused = c.get(path)
        assert refused.status_code == 429 and "50 logs" in refused.json()["detail"]
    with server.client(alice) as c:
        for _ in range(10):
            followers.append(open_follow(server, path, alice))
        refused = c.get(path)
        assert refused.status_code == 429 and "60 logs" in refused.json()["detail"]
    assert follows_open(server) == 60
    for follower in followers:
        follower.close()
    wait_until(lambda: follows_open(server) == 0, timeout=15, what="follows to end")
    wait_until(
        lambda: server_threads_and_fds(server) <= (before[0] + 2, before[1] + 2),
        timeout=15,
        what=f"threads and fds back to {before}",
    )
    assert httpx.get(f"{server.url}/healthz", timeout=5).status_code == 200


def test_a_rebound_host_name_gets_nothing_from_a_loopback_server(server):
    """DNS rebinding: a page on attacker.example whose name now points at 127.0.0.1."""
    with httpx.Client(base_url=server.url, headers={"Host": "attacker.example"}) as c:
        for method, path in (("GET", "/signin"), ("GET", "/signin/link/x"), ("GET", "/")):
            response = c.request(method, path)
            assert response.status_code == 400, (path, response.text)
            assert "attacker.example" in response.json()["detail"]
            assert "set-cookie" not in response.headers
        spaces = c.get("/api/v1/spaces", headers={"Authorization": f"Bearer {server.admin_token}"})
        assert spaces.status_code == 400
    for host in (f"127.0.0.1:{server.port}", f"localhost:{server.port}", "localhost"):
        assert httpx.get(f"{server.url}/signin", headers={"Host": host}).status_code == 200


@pytest.mark.parametrize("server_args", [["--allowed-host", "launchbay.example"]])
def test_a_host_the_admin_allows_is_answered(limited_server):
    server = limited_server
    with httpx.Client(base_url=server.url, headers={"Host": "launchbay.example"}) as c:
        assert c.get("/signin").status_code == 200


def test_every_page_and_response_carries_the_security_headers(server):
    with server.client() as c:
        for path in ("/signin", "/api/v1/spaces", "/docs", "/static/portal.css", "/nowhere"):
            headers = c.get(path).headers
            assert headers["x-content-type-options"] == "nosniff", path
            assert headers["referrer-policy"] == "same-origin", path
            assert "frame-ancestors 'none'" in headers["content-security-policy"], path
            assert headers["x-frame-options"] == "DENY", path


def test_bodies_and_values_over_their_limits_are_refused_before_anything_is_written(server):
    with server.client() as c:
        huge = c.post(
            "/api/v1/spaces",
            json={"name": "big", "template": "demo", "params": {"greeting": "x" * 2_000_000}},
        )
        assert huge.status_code == 413 and "1,048,576 bytes" in huge.json()["detail"]

        def chunks():
            for _ in range(40):
                yield b"x" * 65536

        chunked = c.post(
            "/api/v1/spaces", content=chunks(), headers={"Content-Type": "application/json"}
        )
        assert chunked.status_code == 413
        param = c.post(
            "/api/v1/spaces",
            json={"name": "big", "template": "demo", "params": {"greeting": "x" * 9000}},
        )
        assert param.status_code == 422 and "8,192 bytes" in param.json()["detail"]
        assert c.get("/api/v1/spaces/big").status_code == 404
    result = server.bay(
        "space", "create", "big", "--template", "demo", "--set", "api.version=" + "v" * 20_000
    )
    assert result.returncode == 2 and "8,192 bytes" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("huge", ["99999999999w", "9" * 400 + "s"])
def test_durations_and_cursors_that_overflow_are_refused_with_the_field_named(server, huge):
    assert server.bay("space", "create", "dur", "--template", "quick", "--wait").returncode == 0
    with server.client() as c:
        answers = [
            c.post("/api/v1/spaces", json={"name": "x", "template": "quick", "ttl": huge}),
            c.post("/api/v1/spaces/dur/extend", json={"by": huge}),
            c.put("/api/v1/spaces/dur", json={"template": "quick", "ttl": huge}),
            c.post(
                "/api/v1/spaces/dur/deploy?wait=true&timeout=" + huge,
                json={"service": "web", "version": "v2"},
            ),
            c.get("/api/v1/spaces?cursor=" + "9" * 40),
        ]
        for answer in answers:
            assert answer.status_code == 422, (answer.request.url, answer.text)
            assert "too long" in answer.text or "cursor" in answer.text
    for args in (["space", "create", "y", "--template", "quick", "--ttl", huge],
                 ["space", "extend", "dur", "--by", huge]):  # fmt: skip
        result = server.bay(*args)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr


READER = """\
name: reader
ttl: {default: 1h, max: 2h}
params: {file: {default: ""}}
services:
  cat:
    process:
      command: [/bin/sh, -c, "id -un; cat '${params.file}' || echo CANNOT-READ; env; exec sleep 600"]
"""


def test_a_service_gets_a_clean_environment_and_the_data_dir_stays_private(
    limited_server, templates
):
    server = limited_server
    write_template(templates, "reader", READER)
    token_file = server.data_dir / "admin-token"
    created = server.bay(
        "space", "create", "peek", "--template", "reader", "--param", f"file={token_file}",
        "--wait",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    log = wait_until(
        lambda: (
            (text := server.bay("space", "logs", "peek", "cat").stdout)
            and "CANNOT-READ" in text
            and text
        ),
        timeout=20,
        what="the service's log",
    )
    assert server.admin_token not in log
    assert "SERVER_SECRET" not in log and "XDG_CONFIG_HOME" not in log  # a clean environment
    assert oct(server.data_dir.stat().st_mode & 0o777) == "0o700"
    for name in ("admin-token", "session-secret", "launchbay.db"):
        assert oct((server.data_dir / name).stat().st_mode & 0o777) == "0o600", name


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MiB file system of its own (tmpfs), to fill up."""
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], check=True)
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small file system needs root")
def test_a_full_disk_is_a_clear_503_and_readyz_says_so_until_it_recovers(
    small_disk, tmp_path, templates
):
    server = ServerProcess(home=tmp_path / "full", templates=templates)
    server.home.mkdir()
    server.home.joinpath("data").symlink_to(small_disk)
    server.start()
    try:
        assert httpx.get(f"{server.url}/readyz").status_code == 200
        filler = small_disk / "filler"
        # Unbuffered: a write cut short by the full disk leaves nothing for close to flush.
        with filler.open("wb", buffering=0) as f, contextlib.suppress(OSError):
            while True:
                f.write(b"\0" * 65536)
        with server.client() as c:
            answers = [
                c.post("/api/v1/spaces", json={"name": f"full-{i}", "template": "quick"})
                for i in range(5)
            ]
        refused = [a for a in answers if a.status_code == 503]
        assert refused, [a.text for a in answers]
        assert all(a.status_code in (201, 503) for a in answers)
        assert "the store cannot take writes" in refused[0].json()["detail"]
        ready = httpx.get(f"{server.url}/readyz")
        assert ready.status_code == 503 and "cannot take writes" in ready.json()["status"]
        filler.unlink()
        wait_until(
            lambda: httpx.get(f"{server.url}/readyz").status_code == 200,
            timeout=10,
            what="ready again",
        )
        with server.client() as c:
            assert (
                c.post("/api/v1/spaces", json={"name": "room", "template": "quick"}).status_code
                == 201
            )
    finally:
        server.stop()


@pytest.mark.parametrize("server_args", [["--admin-only-runtime", "process"]])
def test_runtimes_the_admin_keeps_to_admins_are_refused_to_other_users(limited_server, alice):
    server = limited_server
    refused = server.bay("space", "create", "mine", "--template", "quick", token=alice)
    assert refused.returncode == 4 and "only admins" in refused.stderr, refused.stderr
    allowed = server.bay("space", "create", "theirs", "--template", "quick", "--wait")
    assert allowed.returncode == 0, allowed.stderr


def test_a_request_body_of_the_wrong_type_is_refused_not_coerced(server):
    # {"admin": 0} made a user (admin false by coercion), and "yes"/1 would have made one an
    # admin: a body is what its schema says, or 422 and nothing changes.
    with server.client() as c:
        for body in ({"name": "coerced", "admin": 0}, {"name": "coerced", "admin": "yes"}):
            answer = c.post("/api/v1/users", json=body)
            assert answer.status_code == 422, answer.text
            assert "admin" in answer.text
        # Nothing was made: the name is still free.
        made = c.post("/api/v1/users", json={"name": "coerced", "admin": False})
        assert made.status_code == 201, made.text


# Names and values the runtime cannot pass: each is refused at the door with 422 naming the
# key, and nothing is written (before, they got 201 and the space stayed `provisioning`).
BAD_OVERRIDES = [
    ("kv.env.FEATURE_X\nEVIL", "1"),
    ("kv.env.FEATURE_X=Y", "1"),
    ("kv.env.FEATURE_X\0Y", "1"),
    ("kv.env.FEATURE_X\tY", "1"),
    ("kv.env.1FEATURE", "1"),
    ("kv.env.FEATURE_X", "a\0b"),
    ("kv.version", "pr-1\0"),
]


@pytest.mark.parametrize(("key", "value"), BAD_OVERRIDES)
def test_an_env_name_or_value_the_runtime_cannot_pass_is_422_naming_it(
    server, templates, key, value
):
    write_template(templates, "open", OPEN.replace('env: ["*"]', 'env: ["FEATURE_*"]'))
    with server.client() as c:
        made = c.post(
            "/api/v1/spaces", json={"name": "bad", "template": "open", "set": {key: value}}
        )
        assert made.status_code == 422, made.text
        shown = (
            key.split(".", 1)[1].replace("\0", "\\x00").replace("\n", "\\n").replace("\t", "\\t")
        )
        assert shown.split("=")[0] in made.json()["detail"], made.json()
        assert c.get("/api/v1/spaces/bad").status_code == 404  # nothing was written
        assert (
            c.post("/api/v1/spaces", json={"name": "good", "template": "open"}).status_code == 201
        )
        deployed = c.post(
            "/api/v1/spaces/good/deploy",
            json={"service": "kv", "set": {key.split(".", 1)[1]: value}},
        )
        assert deployed.status_code == 422, deployed.text
        assert c.get("/api/v1/spaces/good/deploys").status_code in (200, 404)


@pytest.mark.parametrize("where", ["param", "version"])
def test_a_nul_in_a_param_or_a_deployed_version_is_422(server, templates, where):
    write_template(templates, "open", OPEN)
    with server.client() as c:
        if where == "param":
            made = c.post(
                "/api/v1/spaces",
                json={"name": "bad", "template": "demo", "params": {"greeting": "hi\0there"}},
            )
            assert made.status_code == 422 and "greeting" in made.json()["detail"], made.text
            assert c.get("/api/v1/spaces/bad").status_code == 404
        else:
            assert (
                c.post("/api/v1/spaces", json={"name": "v", "template": "open"}).status_code == 201
            )
            deployed = c.post("/api/v1/spaces/v/deploy", json={"service": "kv", "version": "a\0b"})
            assert deployed.status_code == 422, deployed.text


LOADING = [
    "OPENSSL_CONF", "LUA_INIT", "PHPRC", "HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY",
    "https_proxy", "SSL_CERT_FILE", "SSL_CERT_DIR", "CURL_CA_BUNDLE", "REQUESTS_CA_BUNDLE",
    "GCONV_PATH", "MALLOC_ARENA_MAX", "NODE_EXTRA_CA_CERTS",
]  # fmt: skip


@pytest.mark.parametrize("name", LOADING)
def test_variables_that_change_loading_trust_or_egress_are_refused_on_an_untrusted_template(
    server, templates, alice, name
):
    write_template(templates, "open", OPEN)
    result = server.bay(
        "space", "create", "loaded", "--template", "open", "--set", f"kv.env.{name}=x", token=alice
    )
    assert result.returncode == 2 and "trusted: true" in result.stderr, result.stderr


def test_a_users_value_reaches_the_service_as_written(server, templates):
    """`${template.dir}` in a --set value was expanded; it is the user's text, not the template's."""
    write_template(templates, "open", OPEN)
    made = server.bay(
        "space", "create", "literal", "--template", "open", "--set",
        "kv.env.GREETING=${template.dir}-$HOME", "--wait",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    pids = labelled_processes(server.data_dir / "runtime" / "process", "literal")
    environ = (Path("/proc") / str(max(pids)) / "environ").read_bytes().split(b"\0")
    assert b"GREETING=${template.dir}-$HOME" in environ


def test_a_ttl_under_a_minute_is_refused(limited_server):
    server = limited_server
    for ttl in ("1ms", "59s"):
        result = server.bay("space", "create", "brief", "--template", "quick", "--ttl", ttl)
        assert result.returncode == 2 and "at least 1m" in result.stderr, result.stderr
        assert server.bay("space", "show", "brief").returncode == 5
    made = server.bay("space", "create", "brief", "--template", "quick", "--ttl", "1m")
    assert made.returncode == 0, made.stderr
