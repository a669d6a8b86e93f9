"""Signing in and out as a person does (`bay login`, `bay logout`, `bay auth status`),
every refused token said with where it came from and how to mend it, and the contexts
`bay server` writes: real servers, `bay` as a subprocess or in-process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from launchbay.cli import context
from tests.support import ServerProcess, free_port


def as_a_person(
    server: ServerProcess, *args: str, stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`bay` with no BAY_* variables (the config file or the flags say where and who), its
    standard input a pipe holding `stdin`."""
    return subprocess.run(
        [sys.executable, "-m", "launchbay", *args],
        env=server.env | (env or {}),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def config_of(server: ServerProcess) -> Path:
    return server.home / "config" / "launchbay" / "config.json"


def add_context(server: ServerProcess, name: str, **entry: str) -> None:
    """A context written into the server's config file as `bay login` would."""
    saved = json.loads(config_of(server).read_text())
    saved["contexts"][name] = {"server": server.url, **entry}
    config_of(server).write_text(json.dumps(saved))


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
    return result.stderr.strip()


# 1. bay login --with-token


def test_login_with_token_reads_the_token_from_standard_input(server):
    logged = as_a_person(server, "login", server.url, "--with-token", stdin=server.admin_token)
    assert logged.returncode == 0, logged.stderr
    assert (
        logged.stdout == f"logged in to {server.url} as admin; context 'default' is now current\n"
    )
    saved = json.loads(config_of(server).read_text())
    assert saved["current"] == "default"
    assert saved["contexts"]["default"] == {"server": server.url, "token": server.admin_token}
    assert as_a_person(server, "space", "list").returncode == 0


def test_login_with_standard_input_piped_reads_it_rather_than_prompting(server):
    logged = as_a_person(server, "login", server.url, "--name", "ci", stdin=server.admin_token)
    assert logged.returncode == 0, logged.stderr
    assert "GetPassWarning" not in logged.stderr and "Token:" not in logged.stdout
    assert json.loads(config_of(server).read_text())["current"] == "ci"


def test_an_empty_or_refused_token_is_one_line_and_leaves_the_config_file_as_it_was(server):
    before = config_of(server).read_bytes()  # the server's own `local` context
    empty = as_a_person(server, "login", server.url, "--with-token", stdin="\n")
    assert empty.returncode == 2
    assert one_line(empty) == "bay: the token is empty: pipe it to `bay login SERVER --with-token`"
    refused = as_a_person(server, "login", server.url, "--with-token", stdin="lb_nope\n")
    assert refused.returncode == 4
    assert one_line(refused) == (
        f"bay: the token from standard input is not accepted by {server.url} (invalid token: it was never made, or it was revoked): "
        f"check the token, then run `bay login {server.url} --with-token` again"
    )
    assert config_of(server).read_bytes() == before


# 2. bay logout


def test_logout_forgets_the_token_of_the_current_or_the_named_context(bay):
    context.set_context("team", server="https://lb.example.com", token="lb_team")
    context.set_context("other", server="https://other.example.com", token="lb_other", use=False)
    assert bay("logout") == (0, "logged out of context 'team' (https://lb.example.com)\n", "")
    assert bay("logout", "--context", "other")[:2] == (
        0,
        "logged out of context 'other' (https://other.example.com)\n",
    )
    saved = json.loads(context.config_path().read_text())
    assert saved["contexts"] == {
        "team": {"server": "https://lb.example.com"},
        "other": {"server": "https://other.example.com"},
    }
    assert bay("logout") == (0, "context 'team' has no token: nothing to log out of\n", "")
    code, _, err = bay("logout", "--context", "nope")
    assert (code, err) == (2, "bay: no context named 'nope'; see `bay context list`\n")


def test_logging_out_of_local_forgets_the_servers_token_file_too(bay, tmp_path):
    token_file = tmp_path / "admin-token"
    token_file.write_text("lb_admin\n")
    context.set_context("local", server="http://127.0.0.1:9", token_file=str(token_file))
    assert bay("logout")[0] == 0
    assert context.resolve().token is None and token_file.exists()


# 3. bay auth status


def test_auth_status_names_where_the_server_and_the_token_came_from(server):
    by_env = server.bay("auth", "status")
    assert by_env.returncode == 0, by_env.stderr
    assert by_env.stdout == (
        f"server       {server.url}  (from BAY_SERVER)\n"
        "signed in as admin  (admin)\n"
        "token        from BAY_TOKEN\n"
        "key          bootstrap\n"
        "scopes       admin, deploy, read, spaces\n"
        "templates    any\n"
        "repositories any\n"
        "expires      never\n"
    )
    by_flags = as_a_person(
        server, "--server", server.url, "--token", server.admin_token, "auth", "status"
    )
    assert "(from --server)" in by_flags.stdout and "token        from --token" in by_flags.stdout
    add_context(server, "default", token=server.admin_token)
    by_context = as_a_person(server, "--context", "default", "auth", "status", "-o", "json")
    assert by_context.returncode == 0, by_context.stderr
    from_context = {"kind": "context", "name": "default", "file": str(config_of(server))}
    assert json.loads(by_context.stdout) == {
        "server": server.url,
        "server_from": from_context,
        "name": "admin",
        "admin": True,
        "token_from": from_context,
        "key": {
            "name": "bootstrap",
            "scopes": ["admin", "deploy", "read", "spaces"],
            "templates": [],
            "repositories": [],
            "expires_at": None,
        },
    }


def test_auth_status_of_the_local_context_names_the_servers_token_file(server):
    shown = as_a_person(server, "auth", "status")
    assert shown.returncode == 0, shown.stderr
    token_file = server.data_dir / "admin-token"
    assert f"(from context 'local' ({config_of(server)}))" in shown.stdout
    assert f"token        from context 'local' ({token_file})" in shown.stdout


# A key's scopes, limits and expiry in `bay auth status`: tests/integration/test_keys.py.


# 4. every 401 says which token, from where, and how to mend it


def test_a_refused_token_is_named_with_its_source_and_the_fix_by_any_command(server):
    by_env = server.bay("space", "list", token="lb_nope")
    assert by_env.returncode == 4
    assert one_line(by_env) == (
        f"bay: the token from BAY_TOKEN is not accepted by {server.url} (invalid token: it was never made, or it was revoked): "
        "unset BAY_TOKEN to use the context's, or set it to a token the server knows"
    )
    by_flag = as_a_person(server, "--server", server.url, "--token", "lb_nope", "auth", "status")
    assert by_flag.returncode == 4
    assert one_line(by_flag).startswith("bay: the token from --token is not accepted by")
    add_context(server, "team", token="lb_stale")
    stale = as_a_person(server, "--context", "team", "template", "list")
    assert stale.returncode == 4
    assert one_line(stale) == (
        f"bay: the token from context 'team' ({config_of(server)}) is not accepted by "
        f"{server.url} (invalid token: it was never made, or it was revoked): "
        f"run `bay login {server.url} --with-token --name team`, or set BAY_TOKEN"
    )


def test_no_token_at_all_says_how_to_get_one(server):
    add_context(server, "bare")
    bare = as_a_person(server, "--context", "bare", "auth", "status")
    assert bare.returncode == 4
    assert one_line(bare) == (
        f"bay: no token for {server.url}: "
        f"run `bay login {server.url} --with-token --name bare`, or set BAY_TOKEN"
    )


def test_a_context_without_a_token_never_borrows_the_local_admin_token(bay):
    context.default_token_file().parent.mkdir(parents=True)
    context.default_token_file().write_text("lb_local_admin\n")
    context.set_context("team", server="https://lb.example.com")
    assert context.resolve().token is None
    assert context.resolve(name="local").token == "lb_local_admin"


# 5. bay doctor says where the server and the token really came from


def test_doctor_credits_the_variables_or_flags_that_overrode_the_context(bay, server, monkeypatch):
    context.set_context("local", server=f"http://127.0.0.1:{free_port()}", token="lb_old")
    monkeypatch.setenv("BAY_SERVER", server.url)
    monkeypatch.setenv("BAY_TOKEN", server.admin_token)
    code, out, _ = bay("doctor", "-o", "json")
    checks = {c["check"]: c["detail"] for c in json.loads(out)}
    assert code == 0 and checks["context"] == (
        f"server {server.url} from BAY_SERVER; token from BAY_TOKEN"
    )
    monkeypatch.delenv("BAY_TOKEN")
    code, out, _ = bay("--server", server.url, "doctor", "-o", "json")
    checks = {c["check"]: c["detail"] for c in json.loads(out)}
    assert code == 1 and checks["context"] == (
        f"server {server.url} from --server; token from context 'local' ({context.config_path()})"
    )
    assert "(the server comes from --server, the token does not)" in checks["server"]


# 6. bay server never takes over a context whose server still answers


def test_a_second_server_writes_its_own_context_while_the_first_still_answers(tmp_path, templates):
    shared = {"XDG_CONFIG_HOME": str(tmp_path / "config")}
    first, second = (
        ServerProcess(home=tmp_path / name, templates=templates, extra_env=shared)
        for name in ("first", "second")
    )
    for s in (first, second):
        s.home.mkdir()
    config = tmp_path / "config" / "launchbay" / "config.json"
    try:
        first.start()
        assert "context 'local' written: there was no context 'local'" in first.log()
        second.start()
        assert (
            f"context 'local-{second.port}' written: context 'local' points at {first.url}, "
            f"which still answers; `bay context use local-{second.port}` to use it"
        ) in second.log()
        saved = json.loads(config.read_text())
        assert saved["current"] == "local"
        assert saved["contexts"]["local"]["server"] == first.url
        assert saved["contexts"][f"local-{second.port}"]["server"] == second.url
        shown = as_a_person(first, "auth", "status")
        assert f"server       {first.url}" in shown.stdout, shown.stderr

        first.stop()
        second.stop()
        second.start()  # `local` no longer answers: it is this server's now
        assert f"context 'local' written: {first.url}, where it pointed, does not answer" in (
            second.log()
        )
        second.stop()
        second.start()
        assert f"context 'local' written: it points at {second.url}, this server" in second.log()
        assert json.loads(config.read_text())["contexts"]["local"]["server"] == second.url
    finally:
        first.stop()
        second.stop()
