"""The CI examples in examples/ci run as written (with the pipeline's variables filled in)."""

from __future__ import annotations

import re
import shlex

import yaml

from launchbay.server import load_config
from tests.support import ROOT

CI = ROOT / "examples" / "ci"


def bay_lines(text: str) -> list[str]:
    return [
        line.strip().removeprefix("- run: ").removeprefix("- ").removeprefix("run: ")
        for line in text.splitlines()
        if re.search(r"(run: |- )bay ci ", line)
    ]


def fill(command: str, values: dict[str, str]) -> list[str]:
    command = re.sub(r"\$\{\{\s*([^}]+?)\s*\}\}", lambda m: values[m.group(1)], command)
    for name, value in values.items():
        command = command.replace(f'"${name}"', value).replace(f"${name}", value)
    return shlex.split(command)


def test_the_github_actions_workflow_brings_a_space_up_and_down(server):
    text = (CI / "github-actions.yml").read_text()
    yaml.safe_load(text)
    up, down = bay_lines(text)
    values = {"github.event.pull_request.head.sha": "0123abc", "SPACE": "pr-7-api"}
    result = server.bay(*fill(up, values)[1:])
    assert result.returncode == 0, result.stderr
    assert (
        next(s for s in server.space("pr-7-api")["services"] if s["name"] == "api")["version"]
        == "sha-0123abc"
    )
    assert server.bay(*fill(down, values)[1:]).returncode == 0
    assert server.space("pr-7-api")["phase"] == "deleted"


def test_the_gitlab_job_brings_a_space_up_and_down(server):
    text = (CI / "gitlab-ci.yml").read_text()
    yaml.safe_load(text)
    up, down = bay_lines(text)
    values = {"CI_COMMIT_SHA": "feedbee", "SPACE": "mr-3-api"}
    assert server.bay(*fill(up, values)[1:]).returncode == 0
    assert server.bay(*fill(down, values)[1:]).returncode == 0


def test_the_example_server_config_is_valid():
    config = load_config(CI / "launchbay-server.yaml")
    assert config.github is not None
    assert config.github.repositories["acme/api"].service == "api"
