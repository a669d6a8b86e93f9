"""The README is the front door: its commands and examples must work as written."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess

import httpx
import pytest

from launchbay.store import queries as q
from launchbay.store.db import Store, sqlite_url
from tests.leftovers import find_leftovers
from tests.support import ROOT, free_port, labelled_processes

README = (ROOT / "README.md").read_text()


def code_block_after(marker: str) -> list[str]:
    start = README.index(marker)
    block = re.search(r"```sh\n(.*?)```", README[start:], re.S)
    assert block, f"no sh block after {marker!r}"
    return [line.split("#")[0].strip() for line in block.group(1).splitlines() if line.strip()]


def test_the_quick_start_is_two_commands_and_ci_runs_the_second():
    demo, tests = code_block_after("## Quick start")
    assert demo == "bash scripts/demo.sh"
    assert tests == "bash scripts/test.sh"
    assert "exec bash scripts/test.sh" in (ROOT / ".ci" / "run").read_text()


class Demo:
    """The README's demo command, run as a person runs it, until it says it is ready."""

    def __init__(self, cwd, env: dict[str, str], *, own_group: bool) -> None:
        (command,) = code_block_after("## Quick start")[:1]
        self.port = free_port()
        env = env | {"LAUNCHBAY_DEMO_PORT": str(self.port)}
        self.process = subprocess.Popen(
            shlex.split(command),
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=own_group,
        )
        self.output: list[str] = []
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)
            if line.startswith("demo ready: "):
                self.url = line.removeprefix("demo ready: ").strip()
                return
        self.process.communicate()
        pytest.fail("the demo ended before it was ready:\n" + "".join(self.output))

    def page(self) -> str:
        page = httpx.get(self.url)
        assert page.status_code == 200
        assert "Hello from space <code>demo</code>" in page.text
        return page.text

    def interrupt(self, *, group: bool) -> str:
        """Ctrl-C: to the script alone, or to its whole process group as a terminal does."""
        if group:
            os.killpg(self.process.pid, signal.SIGINT)
        else:
            self.process.send_signal(signal.SIGINT)
        try:
            rest, _ = self.process.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL) if group else self.process.kill()
            self.process.communicate()
            raise
        assert self.process.returncode in (0, 130), "".join(self.output) + rest
        return rest


def clean_env(tmp_path, *, drop: tuple[str, ...] = ()) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BAY_", "LAUNCHBAY_", *drop))}
    return env | {"XDG_CONFIG_HOME": str(tmp_path / "config")}


@pytest.mark.timeout(300)
def test_the_demo_command_serves_the_demo_space_and_ctrl_c_cleans_up(tmp_path):
    demo = Demo(ROOT, clean_env(tmp_path), own_group=False)
    try:
        text = demo.page()
        assert "Visits: <strong>" in text and "key-value store at" in text
        assert f"Launchbay is running:  http://127.0.0.1:{demo.port}/" in "".join(demo.output)
    finally:
        demo.interrupt(group=False)
    assert labelled_processes(ROOT / ".demo" / "data" / "runtime" / "process") == {}


def test_every_cli_example_in_the_readme_runs_against_a_real_server(server):
    commands = code_block_after("<!-- readme-test: cli -->")
    assert len(commands) >= 10
    for command in commands:
        args = shlex.split(command)
        assert args[0] == "bay"
        result = server.bay(*args[1:])
        assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"


def fresh_clone(target) -> None:
    """`git clone` of this repository, with this work tree's changes on top (tracked and new
    files, nothing ignored): in CI, where the work tree is a clean clone, exactly a clone."""
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(target)], check=True, timeout=120)
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout
    for name in filter(None, listed.decode().split("\0")):
        source, copy = ROOT / name, target / name
        if source.is_file():
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy)
        elif not source.exists():
            copy.unlink(missing_ok=True)


@pytest.mark.timeout(900)
def test_a_fresh_clone_runs_the_demo_as_written_and_ctrl_c_to_its_group_leaves_nothing(tmp_path):
    clone = tmp_path / "clone"
    fresh_clone(clone)
    assert not (clone / ".venv").exists()
    env = clean_env(tmp_path, drop=("VIRTUAL_ENV", "PYTHON"))
    env["PATH"] = os.pathsep.join(
        p for p in env.get("PATH", "").split(os.pathsep) if not p.startswith(str(ROOT))
    )
    demo = Demo(clone, env, own_group=True)
    try:
        demo.page()
    finally:
        rest = demo.interrupt(group=True)
    assert find_leftovers([clone]) == [], rest
    store = Store(sqlite_url(clone / ".demo" / "data"))
    try:
        with store.read() as s:
            assert [space.name for space in q.live_spaces(s)] == []
    finally:
        store.close()


def test_the_notifications_example_is_a_valid_config_file(tmp_path):
    from launchbay.server import load_config

    start = README.index("## Notifications")
    block = re.search(r"```yaml\n(.*?)```", README[start:], re.S)
    assert block
    (tmp_path / "launchbay.yaml").write_text(block.group(1))
    notify = load_config(tmp_path / "launchbay.yaml").notifications
    assert [c.kind for c in notify.channels] == ["slack", "json"]
    assert [o.total_seconds() for o in notify.offsets()] == [86400, 3600, 600]
