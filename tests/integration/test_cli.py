"""The CLI in-process: one clear line and an exit status for every failure, never a traceback."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from launchbay.cli import context
from tests.support import free_port


def test_version_prints_and_exits_zero(bay):
    assert bay("--version") == (0, "bay 0.1.0\n", "")


def test_an_unreachable_server_is_one_line_and_exit_3(bay, monkeypatch):
    monkeypatch.setenv("BAY_SERVER", f"http://127.0.0.1:{free_port()}")
    code, _out, err = bay("space", "list")
    assert code == 3
    assert err.count("\n") == 1 and err.startswith(
        "bay: cannot reach the Launchbay server at http://127.0.0.1:"
    )
    assert "Traceback" not in err


def test_traceback_flag_shows_the_details(bay, monkeypatch):
    monkeypatch.setenv("BAY_SERVER", f"http://127.0.0.1:{free_port()}")
    with pytest.raises(Exception, match="cannot reach"):
        bay("--traceback", "space", "list")


def test_usage_errors_exit_2(bay):
    code, _, err = bay("space", "create", "x")
    assert code == 2 and "--template" in err
    code, _, err = bay("space", "list", "-o", "toml")
    assert code == 2
    assert err.strip() == "bay: --output must be table, wide, name, json or yaml, not 'toml'"
    code, _, err = bay("space", "create", "x", "--template", "t", "--set", "novalue")
    assert code == 2 and "--set 'novalue': write KEY=VALUE" in err
    code, _, err = bay("space", "create", "x", "--template", "t", "--timeout", "soon")
    assert code == 2 and "not a duration" in err


def test_template_validate_lists_every_problem_with_file_and_line(bay, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: bad\nttl: {default: 1h, max: 2h}\nservices:\n  a:\n    depends_on: [b]\n    process: {command: x}\n  b:\n    depends_on: [a]\n    process: {command: y}\n    extra: 1\n"
    )
    code, out, err = bay("template", "validate", str(bad))
    assert code == 2
    assert f"{bad}:10: services.b.extra: unknown key 'extra'" in err
    good = tmp_path / "examples"
    code, out, _ = bay("template", "validate", "examples/templates/demo.yaml")
    assert code == 0 and "template 'demo' is valid (3 services)" in out
    code, _, err = bay("template", "validate", str(good / "missing.yaml"))
    assert code == 2 and "cannot read" in err


def test_the_local_context_finds_the_servers_token_without_copying(bay, tmp_path, monkeypatch):
    token_file = tmp_path / "server-data" / "admin-token"
    token_file.parent.mkdir()
    token_file.write_text("lb_secret\n")
    context.set_context("local", server="http://127.0.0.1:9", token_file=str(token_file))
    resolved = context.resolve()
    assert (resolved.name, resolved.server, resolved.token) == (
        "local",
        "http://127.0.0.1:9",
        "lb_secret",
    )
    saved = json.loads(context.config_path().read_text())
    assert "lb_secret" not in json.dumps(saved)
    monkeypatch.setenv("BAY_TOKEN", "lb_env")
    assert context.resolve().token == "lb_env"


def test_contexts_can_be_listed_and_switched(bay):
    context.set_context("team", server="https://lb.example.com", token="lb_x", use=False)
    code, out, _ = bay("context", "list")
    assert code == 0 and "* local" in out and "  team" in out
    assert bay("context", "use", "team")[0] == 0
    assert context.resolve().server == "https://lb.example.com"
    code, _, err = bay("context", "use", "nope")
    assert code == 2 and "no context named 'nope'" in err


def test_doctor_reports_an_unreachable_server(bay, monkeypatch):
    monkeypatch.setenv("BAY_SERVER", f"http://127.0.0.1:{free_port()}")
    code, out, _ = bay("doctor")
    assert code == 1 and "BAD server" in out


def test_doctor_against_a_real_server_reports_the_process_runtime(bay, server, monkeypatch):
    monkeypatch.setenv("BAY_SERVER", server.url)
    monkeypatch.setenv("BAY_TOKEN", server.admin_token)
    code, out, _ = bay("doctor", "-o", "json")
    checks = {c["check"]: c for c in json.loads(out)}
    assert (
        code == 0
        and checks["runtime process"]["ok"]
        and "signed in as admin" in checks["server"]["detail"]
    )


def test_not_found_is_exit_5_with_the_servers_message(bay, server, monkeypatch):
    monkeypatch.setenv("BAY_SERVER", server.url)
    monkeypatch.setenv("BAY_TOKEN", server.admin_token)
    assert bay("space", "show", "nope") == (5, "", "bay: no space named 'nope'\n")


def test_an_unknown_filter_value_is_exit_2_naming_the_valid_ones(server):
    for option, valid in (
        ("--phase", "--phase must be pending, provisioning"),
        ("--runtime", "'compose'"),
    ):
        result = server.bay("space", "list", option, "bogus")
        assert result.returncode == 2, result.stdout + result.stderr
        assert valid in result.stderr and "Traceback" not in result.stderr


def test_deleting_a_deleted_space_says_it_was_deleted_already(server):
    assert server.bay("space", "create", "once", "--template", "demo", "--wait").returncode == 0
    assert server.bay("space", "delete", "once", "--wait").stdout == "once deleted\n"
    again = server.bay("space", "delete", "once")
    assert (again.returncode, again.stdout) == (0, "once was deleted already\n")


def test_piped_tables_never_cut_names_or_urls(server):
    name = "a-space-name-as-long-as-launchbay-allows"  # 40 characters
    assert server.bay("space", "create", name, "--template", "demo", "--wait").returncode == 0
    url = next(s for s in server.space(name)["services"] if s["name"] == "web")["endpoints"]["web"]
    for args in (("space", "list"), ("space", "show", name)):
        shown = server.bay(*args, extra_env={"COLUMNS": "80"})
        assert shown.returncode == 0 and name in shown.stdout, shown.stdout
        assert "…" not in shown.stdout
    assert url in server.bay("space", "show", name).stdout


def test_list_output_formats_for_people_and_for_scripts(server):
    assert server.bay("space", "create", "fmt-1", "--template", "demo", "--wait").returncode == 0
    as_json = json.loads(server.bay("space", "list", "-o", "json").stdout)
    as_yaml = yaml.safe_load(server.bay("space", "list", "-o", "yaml").stdout)
    assert as_yaml == as_json and as_json[0]["name"] == "fmt-1"
    assert server.bay("space", "list", "-o", "name").stdout == "fmt-1\n"
    assert server.bay("space", "show", "fmt-1", "-o", "name").stdout == "fmt-1\n"
    url = next(s for s in as_json[0]["services"] if s["name"] == "web")["endpoints"]["web"]
    wide = server.bay("space", "list", "-o", "wide", extra_env={"COLUMNS": "300"}).stdout
    assert "EXPIRES AT" in wide and url in wide
    bare = server.bay("space", "list", "--no-headers").stdout
    assert "NAME" not in bare and bare.startswith("fmt-1")
    wrong = server.bay("space", "list", "-o", "xml")
    assert wrong.returncode == 2
    assert "--output must be table, wide, name, json or yaml, not 'xml'" in wrong.stderr


def _in_shell(server, shell: list[str], script: str) -> str:
    """`script` run by a real shell with `bay` on its PATH, against the live server."""
    env = server.env | {
        "BAY_SERVER": server.url,
        "BAY_TOKEN": server.admin_token,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    done = subprocess.run(
        [*shell, script], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_completion_scripts_complete_commands_and_a_live_servers_space_names(server):
    for name in ("comp-alpha", "comp-beta", "other"):
        assert server.bay("space", "create", name, "--template", "demo").returncode == 0
    scripts = {shell: server.bay("completion", shell).stdout for shell in ("bash", "zsh", "fish")}
    assert "complete " in scripts["bash"] and "compdef" in scripts["zsh"]
    assert "complete --command bay" in scripts["fish"]

    bash = """source <(bay completion bash)
    complete_words() { COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _bay_completion bay; echo "${COMPREPLY[*]}"; }
    complete_words bay sp
    complete_words bay space show comp-
    complete_words bay space create x --template de
    complete_words bay space logs comp-alpha w
    complete_words bay space list --phase re
    complete_words bay space list -o ya"""
    lines = _in_shell(server, ["bash", "-c"], bash).splitlines()
    assert lines == ["space", "comp-alpha comp-beta", "demo", "web", "ready", "yaml"]

    # zsh: the real script in a real zsh, with compsys's two entry points standing in.
    zsh = """compdef() { : }
    _arguments() { print -r -- "$@" }
    source <(bay completion zsh)
    words=(bay space show comp-a); CURRENT=4; _bay_completion"""
    assert "comp-alpha" in _in_shell(server, ["zsh", "-c"], zsh)
    fish = 'bay completion fish | source; complete -C "bay space show comp-"'
    assert _in_shell(server, ["fish", "-c"], fish).split() == ["comp-alpha", "comp-beta"]
    unknown = server.bay("completion", "tcsh")
    assert unknown.returncode == 2 and "bash, zsh or fish" in unknown.stderr


def test_help_speaks_of_names_and_durations_not_python_types(server):
    for args in (("space", "create"), ("space", "logs"), ("space", "list"), ("space", "extend")):
        shown = server.bay(*args, "--help", extra_env={"COLUMNS": "120"}).stdout
        assert "<str>" not in shown and "{name}" not in shown and "<bool>" not in shown, shown
        assert "list[str]" not in shown
    assert "NAME SERVICE" in server.bay("space", "logs", "--help").stdout
    assert "DURATION" in server.bay("space", "extend", "--help").stdout


def test_events_have_a_header_and_machine_times_are_iso_with_seconds_and_z(server):
    assert server.bay("space", "create", "times", "--template", "demo", "--wait").returncode == 0
    shown = server.bay("space", "events", "times", extra_env={"COLUMNS": "200"}).stdout
    assert shown.split()[:4] == ["WHEN", "ACTOR", "KIND", "MESSAGE"]
    space = json.loads(server.bay("space", "show", "times", "-o", "json").stdout)
    stamps = [space["created_at"], space["expires_at"], space["updated_at"]]
    stamps += [
        e["at"] for e in json.loads(server.bay("space", "events", "times", "-o", "json").stdout)
    ]
    for stamp in stamps:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", stamp), stamp


def test_retry_after_the_cause_is_gone_and_ended_spaces_are_listed_with_why(server, templates):
    from tests.integration import templates as extra

    extra.install_curable(templates)
    failed = server.bay("space", "create", "cli-sick", "--template", "curable", "--wait")
    assert failed.returncode == 6 and "database unreachable" in failed.stderr
    progress = failed.stderr
    assert re.search(r"\[\d+s\] cli-sick: api starting: .*503", progress), progress
    (templates / "cured").write_text("back\n")
    retried = server.bay("space", "retry", "cli-sick", "--wait")
    assert retried.returncode == 0, retried.stderr
    assert "ready" in retried.stdout
    again = server.bay("space", "retry", "cli-sick")
    assert again.returncode == 8 and "only a failed or degraded space is retried" in again.stderr

    assert server.bay("space", "delete", "cli-sick", "--wait").returncode == 0
    ended = server.bay("space", "list", "--ended", extra_env={"COLUMNS": "200"}).stdout
    assert "cli-sick" in ended and "deleted by admin" in ended
    assert "cli-sick" not in server.bay("space", "list").stdout
    shown = server.bay("space", "show", "cli-sick").stdout
    assert "ended" in shown and "deleted by admin" in shown


def test_template_show_says_when_no_runtime_here_can_run_it(server, templates):
    (templates / "elsewhere.yaml").write_text(
        "name: elsewhere\nttl: {default: 1h, max: 2h}\nservices:\n"
        "  web:\n    helm: {chart: ./chart}\n"
    )
    shown = server.bay("template", "show", "elsewhere")
    assert shown.returncode == 0, shown.stderr
    assert "no runtime this server enables can run it" in shown.stdout
    assert "bay space create" not in shown.stdout
    assert (
        "create one: bay space create NAME --template demo"
        in server.bay("template", "show", "demo").stdout
    )


def test_sleep_and_wake_can_wait_and_history_says_when_there_is_none(server):
    assert server.bay("space", "create", "nap", "--template", "demo", "--wait").returncode == 0
    slept = server.bay("space", "sleep", "nap", "--wait")
    assert (slept.returncode, slept.stdout) == (0, "nap is sleeping\n"), slept.stderr
    woke = server.bay("space", "wake", "nap", "--wait")
    assert (woke.returncode, woke.stdout) == (0, "nap is ready\n"), woke.stderr
    history = server.bay("space", "history", "nap")
    assert history.stdout == "no deploys of nap yet; `bay space deploy` makes one\n"
