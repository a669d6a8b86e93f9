"""`bay server` reads one settings tree: a file holding every flag's setting makes the same
server as the flags; a mistake names the file, the line and the key; `--print-config`
shows the effective settings with every secret redacted."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import yaml

from tests.support import ServerProcess, free_port

SECRET = "hunter2-not-to-be-shown"


def bay_server(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "XDG_CONFIG_HOME": str(home / "config")}
    return subprocess.run(
        [sys.executable, "-m", "launchbay", "server", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def every_flag(tmp_path: Path, templates: Path, port: int) -> tuple[list[str], str]:
    """Every flag `bay server` has, and a settings file that says the same."""
    data = tmp_path / "home" / "data"  # where the test's server process keeps it
    flags = [
        "--host=127.0.0.1",
        f"--port={port}",
        f"--data-dir={data}",
        f"--templates={templates}",
        f"--db=sqlite:///{data}/launchbay.db",
        "--reconcile-interval=2",
        "--sweep-interval=0.5",
        "--orphan-grace=3",
        "--workers=3",
        "--min-ttl=2m",
        "--copilot",
        "--log-level=warning",
        "--kube-context=ctx",
        "--namespace-prefix=t-",
        "--base-domain=spaces.example.com",
        "--allowed-host=bay.example.com",
        "--allowed-host=bay.internal",
        "--process-isolation=none",
        "--service-uids=700000-700999",
        "--max-body=4096",
        "--max-follows=7",
        "--max-follows-per-user=3",
        "--admin-only-runtime=process",
    ]
    text = f"""\
server:
  host: 127.0.0.1
  port: {port}
  data_dir: {data}
  templates: {templates}
  log_level: warning
  allowed_hosts: [bay.example.com, bay.internal]
  max_body: 4096
  max_follows: 7
  max_follows_per_user: 3
  admin_only_runtimes: [process]
database:
  url: sqlite:///{data}/launchbay.db
engine:
  reconcile_interval: 2
  sweep_interval: 0.5
  orphan_grace: 3
  workers: 3
  min_ttl: 2m
  copilot: true
process:
  isolation: none
  service_uids: 700000-700999
kubernetes:
  context: ctx
  namespace_prefix: t-
  base_domain: spaces.example.com
"""
    return flags, text


def test_a_file_with_every_flags_setting_makes_the_same_server_as_the_flags(tmp_path, templates):
    port = free_port()
    flags, text = every_flag(tmp_path, templates, port)
    (config := tmp_path / "launchbay.yaml").write_text(text)
    by_flags = bay_server(*flags, "--print-config", home=tmp_path)
    by_file = bay_server("--config", str(config), "--print-config", home=tmp_path)
    assert by_flags.returncode == 0, by_flags.stderr
    assert by_file.returncode == 0, by_file.stderr
    assert by_file.stdout == by_flags.stdout
    printed = yaml.safe_load(by_file.stdout)
    assert printed["engine"]["workers"] == 3 and printed["server"]["max_body"] == 4096
    # Started from the file, it is that server: its port, its body limit.
    server = ServerProcess(
        home=tmp_path / "home", templates=templates, port=port, extra_args=["--config", str(config)]
    )
    server.home.mkdir()
    server.start()
    try:
        too_big = httpx.post(f"{server.url}/api/v1/spaces", content=b"x" * 5000)
        assert too_big.status_code == 413
    finally:
        server.stop()


def test_a_flag_overrides_the_file(tmp_path, templates):
    _, text = every_flag(tmp_path, templates, free_port())
    (config := tmp_path / "launchbay.yaml").write_text(text)
    printed = bay_server("--config", str(config), "--workers", "9", "--print-config", home=tmp_path)
    assert yaml.safe_load(printed.stdout)["engine"]["workers"] == 9


def test_a_mistake_in_the_file_names_the_file_the_line_and_the_key(tmp_path, templates):
    (config := tmp_path / "launchbay.yaml").write_text(
        f"server:\n  templates: {templates}\nengine:\n  workers: many\n  sweep_intervall: 1\n"
    )
    result = bay_server("--config", str(config), home=tmp_path)
    assert result.returncode == 2
    assert f"{config}:4: engine.workers: Input should be a valid integer" in result.stderr
    assert f"{config}:5: engine.sweep_intervall: unknown key 'sweep_intervall'" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "home").exists() and not (tmp_path / ".local").exists()


def test_a_database_that_cannot_be_opened_is_one_clear_line(tmp_path, templates):
    result = bay_server(
        f"--templates={templates}",
        f"--data-dir={tmp_path / 'data'}",
        f"--db=sqlite:///{tmp_path}/no/such/folder/launchbay.db",
        home=tmp_path,
    )
    assert result.returncode == 3, result.stderr
    assert result.stderr.splitlines()[-1].startswith("bay: cannot open the database sqlite:///")
    assert "unable to open database file" in result.stderr and "Traceback" not in result.stderr


def test_print_config_redacts_every_secret(tmp_path, templates):
    (config := tmp_path / "launchbay.yaml").write_text(
        f"""\
server:
  templates: {templates}
database:
  url: postgresql://launchbay:{SECRET}@db.example.com/launchbay
notifications:
  channels:
    - kind: slack
      url: https://hooks.slack.com/services/T0/B0/{SECRET}
"""
    )
    result = bay_server("--config", str(config), "--print-config", home=tmp_path)
    assert result.returncode == 0, result.stderr
    assert SECRET not in result.stdout
    assert "postgresql://launchbay:***@db.example.com/launchbay" in result.stdout
