"""The README is the front door: its commands and examples must work as written."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess

import httpx
import pytest

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


@pytest.mark.timeout(300)
def test_the_demo_command_serves_the_demo_space_and_ctrl_c_cleans_up(tmp_path):
    (demo,) = code_block_after("## Quick start")[:1]
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BAY_", "LAUNCHBAY_"))}
    env |= {"LAUNCHBAY_DEMO_PORT": str(port), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    process = subprocess.Popen(
        shlex.split(demo),
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output = []
    try:
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line)
            if line.startswith("demo ready: "):
                url = line.removeprefix("demo ready: ").strip()
                break
        else:
            pytest.fail("the demo ended before it was ready:\n" + "".join(output))
        page = httpx.get(url)
        assert page.status_code == 200
        assert "Hello from space <code>demo</code>" in page.text
        assert "Visits: <strong>" in page.text and "key-value store at" in page.text
        assert f"Launchbay is running:  http://127.0.0.1:{port}/" in "".join(output)
    finally:
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=60)
    assert process.returncode in (0, 130), rest
    assert labelled_processes(ROOT / ".demo" / "data" / "runtime" / "process") == {}


def test_every_cli_example_in_the_readme_runs_against_a_real_server(server):
    commands = code_block_after("<!-- readme-test: cli -->")
    assert len(commands) >= 10
    for command in commands:
        args = shlex.split(command)
        assert args[0] == "bay"
        result = server.bay(*args[1:])
        assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
