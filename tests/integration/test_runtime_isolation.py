"""Runtimes are isolated: one that cannot load or cannot reach its backend is reported
`unavailable` with the reason, create on it is refused with that reason, and the reconciler
and the reaper go on with every other runtime's spaces.

Each case runs a real `bay server` whose compose or kubernetes runtime is broken in the way
users met: the Docker SDK missing from the environment, no Docker daemon at DOCKER_HOST, and
a kubeconfig whose API server port is closed.
"""

from __future__ import annotations

import html
import json
import os
import re
import signal
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.integration import templates as extra
from tests.support import ServerProcess, free_port, labelled_processes, wait_until


@dataclass(frozen=True)
class Broken:
    runtime: str
    reason: str  # a fragment of the reason the server must give


def hide_the_docker_sdk(tmp_path: Path) -> tuple[list[str], dict[str, str]]:
    shadow = tmp_path / "shadow"
    (shadow / "docker").mkdir(parents=True)
    (shadow / "docker" / "__init__.py").write_text(
        'raise ModuleNotFoundError("No module named \'docker\'", name="docker")\n'
    )
    return [], {"PYTHONPATH": str(shadow)}


def stop_docker(tmp_path: Path) -> tuple[list[str], dict[str, str]]:
    # The server's own view of "Docker is stopped": nothing answers at its DOCKER_HOST. The
    # machine's daemon keeps running for the other tests.
    return [], {"DOCKER_HOST": f"unix://{tmp_path}/no-dockerd.sock"}


def close_the_kubernetes_api(tmp_path: Path) -> tuple[list[str], dict[str, str]]:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        f"""\
apiVersion: v1
kind: Config
clusters: [{{name: gone, cluster: {{server: "http://127.0.0.1:{free_port()}"}}}}]
users: [{{name: me, user: {{token: not-a-real-token}}}}]
contexts: [{{name: gone, context: {{cluster: gone, user: me}}}}]
current-context: gone
"""
    )
    return ["--kubeconfig", str(kubeconfig)], {}


CASES = {
    "docker-sdk-hidden": (hide_the_docker_sdk, Broken("compose", "No module named 'docker'")),
    "docker-stopped": (stop_docker, Broken("compose", "Docker is not running")),
    "kubernetes-api-closed": (
        close_the_kubernetes_api,
        Broken("kubernetes", "does not answer"),
    ),
}


@pytest.fixture(params=list(CASES))
def broken(request, tmp_path: Path, templates: Path):
    breaker, what = CASES[request.param]
    extra.install(templates, "QUICK")
    args, env = breaker(tmp_path)
    server = ServerProcess(
        home=tmp_path / "home",
        templates=templates,
        extra_args=[
            "--sweep-interval",
            "0.5",
            "--reconcile-interval",
            "1",
            "--min-ttl",
            "1s",
            *args,
        ],
        extra_env=env,
    )
    server.home.mkdir()
    server.start()
    yield server, what
    server.stop()


def test_a_broken_runtime_is_named_with_its_reason_and_the_others_keep_healing_and_reaping(
    broken,
):
    server, what = broken
    root = server.data_dir / "runtime" / "process"
    assert server.bay("space", "create", "heal", "--template", "quick", "--wait").returncode == 0

    # The reconciler still heals a process space...
    (pid,) = labelled_processes(root, "heal")
    os.kill(pid, signal.SIGKILL)
    wait_until(
        lambda: server.space("heal")["services"][0]["restarts"] == 1, timeout=30, what="restart"
    )
    assert server.wait_phase("heal", {"ready"})["services"][0]["status"] == "ready"

    # ...and the reaper still deletes an expired one, processes and all.
    created = server.bay("space", "create", "brief", "--template", "quick", "--ttl", "3s")
    assert created.returncode == 0, created.stderr
    assert server.wait_phase("brief", {"deleted"}, timeout=60)["deleted_at"]
    assert labelled_processes(root, "brief") == {}

    # The broken runtime is named, with why, by the API and by `bay doctor`.
    runtimes = server.get_json("/api/v1/runtimes")
    assert runtimes["process"]["ok"] is True
    assert runtimes[what.runtime]["ok"] is False
    assert what.reason in runtimes[what.runtime]["detail"]
    checked = server.bay("doctor", "-o", "json")
    assert checked.returncode == 1  # something is not right, and doctor says so
    doctor = {c["check"]: c for c in json.loads(checked.stdout)}
    assert doctor[f"runtime {what.runtime}"]["ok"] is False
    assert what.reason in doctor[f"runtime {what.runtime}"]["detail"]

    # The portal says so on the dashboard.
    with httpx.Client(base_url=server.url) as browser:
        page = browser.get("/signin")
        csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text).group(1)
        browser.post("/signin", data={"token": server.admin_token, "csrf": csrf})
        dashboard = browser.get("/").text
    assert f"The {what.runtime} runtime is unavailable" in dashboard
    assert what.reason in html.unescape(dashboard)

    # Create on it is refused with the reason: 503 from the API, exit code 3 from the CLI.
    with server.client() as c:
        response = c.post(
            "/api/v1/spaces", json={"name": "nope", "template": "demo", "runtime": what.runtime}
        )
    assert response.status_code == 503
    assert what.reason in response.json()["detail"]
    refused = server.bay("space", "create", "nope", "--template", "demo", "--runtime", what.runtime)
    assert refused.returncode == 3, refused.stderr
    assert what.reason in refused.stderr and "Traceback" not in refused.stderr
    with server.client() as c:
        assert c.get("/api/v1/spaces/nope").status_code == 404  # nothing was written

    # One warning when the runtime went away, not one every pass.
    log = server.log()
    assert log.count(f"runtime {what.runtime} is unavailable") == 1, log
    assert "Traceback" not in log and "pass failed" not in log
