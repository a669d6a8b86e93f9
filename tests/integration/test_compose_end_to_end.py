"""Local Spaces: the demo template on the compose runtime, on a real Docker Engine."""

from __future__ import annotations

import socket
import subprocess
import textwrap
import uuid

import httpx
import pytest

from launchbay.domain.names import SpaceName
from launchbay.domain.spec import resolve_services
from launchbay.domain.template import parse_template
from launchbay.runtimes.base import ServiceFailed, SpaceRef
from launchbay.runtimes.compose import ComposeRuntime
from tests.support import (
    BUSYBOX_IMAGE,
    ServerProcess,
    compose_root,
    compose_server,
    container_name,
    launchbay_docker_objects,
    wait_until,
)

BROKEN = textwrap.dedent(f"""\
    name: broken-compose
    ttl: {{default: 1h, max: 2h}}
    params: {{case: {{default: rejected}}}}
    services:
      rejected:
        compose: {{image: {BUSYBOX_IMAGE}, command: [sleep, "60"], frobnicate: yes}}
      unpullable:
        compose: {{image: "launchbay-test/does-not-exist:1", ports: ["80"]}}
""")

SLOW = textwrap.dedent(f"""\
    name: slow-compose
    ttl: {{default: 1h, max: 2h}}
    services:
      db:
        health: {{tcp: true, interval: 100ms, timeout: 30s}}
        compose: {{image: {BUSYBOX_IMAGE}, command: [sh, -c, "sleep 3; exec nc -lk -p 5000 -e cat"], ports: ["5000"], volumes: ["db-data:/data"]}}
      app:
        depends_on: [db]
        health: {{tcp: true, interval: 100ms, timeout: 30s}}
        compose:
          image: {BUSYBOX_IMAGE}
          command: [sh, -c, "sleep 2; exec nc -lk -p 5001 -e cat"]
          ports: ["5001"]
          environment: {{DB: "${{services.db.host}}:${{services.db.port}}"}}
""")


@pytest.fixture
def server(tmp_path, templates, busybox_image):
    (templates / "broken-compose.yaml").write_text(BROKEN)
    (templates / "slow-compose.yaml").write_text(SLOW)
    with compose_server(tmp_path / "home", templates) as s:
        yield s


def create_demo(server: ServerProcess, name: str) -> None:
    result = server.bay(
        "space",
        "create",
        name,
        "--template",
        "demo",
        "--runtime",
        "compose",
        "--param",
        f"base_image={BUSYBOX_IMAGE}",
    )
    assert result.returncode == 0, result.stderr


def web_url(space: dict) -> str:
    return next(s for s in space["services"] if s["name"] == "web")["endpoints"]["web"]


def test_two_demo_spaces_run_side_by_side_and_leave_nothing_labelled(server):
    create_demo(server, "side-a")
    create_demo(server, "side-b")
    a = server.wait_phase("side-a", {"ready", "failed"}, timeout=180)
    b = server.wait_phase("side-b", {"ready", "failed"}, timeout=180)
    assert a["phase"] == b["phase"] == "ready", (a["reason"], b["reason"])
    assert web_url(a) != web_url(b)
    for name, space in (("side-a", a), ("side-b", b)):
        page = httpx.get(web_url(space), follow_redirects=True)
        assert page.status_code == 200
        assert f"Hello from space <code>{name}</code>" in page.text
        assert "Visits: <strong>1</strong>" in page.text and "http://kv:8080" in page.text
        api = next(s for s in space["services"] if s["name"] == "api")
        greeting = httpx.get(api["endpoints"]["greeting"], follow_redirects=True)
        assert greeting.status_code == 200 and greeting.json()["visits"] == 2
    assert len(launchbay_docker_objects(compose_root(server))) == 2 * (
        3 + 1 + 1
    )  # containers, network, volume
    for name in ("side-a", "side-b"):
        assert server.bay("space", "delete", name, "--wait").returncode == 0
    assert launchbay_docker_objects(compose_root(server)) == []


def test_sleep_keeps_the_volume_and_wake_brings_the_data_back(server):
    create_demo(server, "nap")
    space = server.wait_phase("nap", {"ready"}, timeout=180)
    httpx.get(web_url(space), follow_redirects=True)
    assert server.bay("space", "sleep", "nap").returncode == 0
    server.wait_phase("nap", {"sleeping"}, timeout=60)
    running = subprocess.run(
        ["docker", "ps", "-q", "--filter", "label=dev.launchbay.space=nap"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert running == []
    assert server.bay("space", "wake", "nap").returncode == 0
    space = server.wait_phase("nap", {"ready"}, timeout=120)
    assert "Visits: <strong>2</strong>" in httpx.get(web_url(space), follow_redirects=True).text


def test_kill_9_during_compose_up_then_restart_converges_without_leaks(server):
    assert (
        server.bay(
            "space", "create", "crash-c", "--template", "slow-compose", "--runtime", "compose"
        ).returncode
        == 0
    )
    wait_until(
        lambda: any(
            x.startswith("container:") for x in launchbay_docker_objects(compose_root(server))
        ),
        timeout=60,
        interval=0.05,
        what="the first container",
    )
    assert server.space("crash-c")["phase"] == "provisioning"
    server.kill()
    server.start()
    space = server.wait_phase("crash-c", {"ready", "failed"}, timeout=120)
    assert space["phase"] == "ready", space["reason"]
    containers = [
        x for x in launchbay_docker_objects(compose_root(server)) if x.startswith("container:")
    ]
    assert len(containers) == 2  # one per service, nothing started twice
    assert server.bay("space", "delete", "crash-c", "--wait").returncode == 0
    assert launchbay_docker_objects(compose_root(server)) == []


def test_a_space_deleted_while_its_containers_start_leaves_nothing(server):
    server.bay("space", "create", "hasty-c", "--template", "slow-compose", "--runtime", "compose")
    wait_until(
        lambda: launchbay_docker_objects(compose_root(server)),
        timeout=60,
        interval=0.05,
        what="started",
    )
    assert server.bay("space", "delete", "hasty-c", "--wait").returncode == 0
    assert launchbay_docker_objects(compose_root(server)) == []


def test_orphans_with_launchbay_labels_are_removed_and_unlabelled_containers_are_not(server):
    create_demo(server, "owner")  # the store is not empty
    root = compose_root(server)
    labels = [
        "--label",
        "dev.launchbay.managed-by=launchbay",
        "--label",
        f"dev.launchbay.root={root.resolve()}",
        "--label",
        "dev.launchbay.space=ghost",
    ]
    decoy = f"decoy-{uuid.uuid4().hex[:8]}"
    subprocess.run(
        [
            "docker",
            "run",
            "-d",
            "--name",
            f"ghost-{uuid.uuid4().hex[:6]}",
            *labels,
            BUSYBOX_IMAGE,
            "sleep",
            "300",
        ],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        ["docker", "volume", "create", *labels, f"ghost-vol-{uuid.uuid4().hex[:6]}"],
        check=True,
        capture_output=True,
    )
    # An image built for a space that is gone (a server killed before it removed it).
    subprocess.run(
        ["docker", "build", "-q", *labels, "-"],
        input=f"FROM {BUSYBOX_IMAGE}\nENV GHOST=1\n",
        text=True,
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            "docker",
            "run",
            "-d",
            "--name",
            decoy,
            "--label",
            "dev.launchbay.space=ghost",
            BUSYBOX_IMAGE,
            "sleep",
            "300",
        ],
        check=True,
        capture_output=True,
    )
    try:
        wait_until(
            lambda: (
                not any(
                    "ghost"
                    in subprocess.run(
                        ["docker", "inspect", "-f", "{{.Name}}", x.split(":")[1]],
                        capture_output=True,
                        text=True,
                    ).stdout
                    + x
                    for x in launchbay_docker_objects(root)
                    if x.startswith("volume:") and "ghost" in x
                )
            ),
            timeout=30,
            what="orphan volume removed",
        )
        wait_until(
            lambda: (
                not [
                    x
                    for x in launchbay_docker_objects(root)
                    if x.startswith("container:") and _space_of(x) == "ghost"
                ]
            ),
            timeout=30,
            what="orphan container removed",
        )
        wait_until(
            lambda: (
                not [
                    x
                    for x in launchbay_docker_objects(root)
                    if x.startswith("image:") and _space_of(x) == "ghost"
                ]
            ),
            timeout=30,
            what="orphan image removed",
        )
        assert (
            subprocess.run(["docker", "inspect", decoy], capture_output=True).returncode == 0
        )  # untouched
        assert server.space("owner")["phase"] in ("provisioning", "ready")
    finally:
        subprocess.run(["docker", "rm", "-f", decoy], capture_output=True)


def _space_of(entry: str) -> str:
    kind, ident = entry.split(":", 1)
    return subprocess.run(
        ["docker", kind, "inspect", "-f", '{{index .Config.Labels "dev.launchbay.space"}}', ident],
        capture_output=True,
        text=True,
    ).stdout.strip()


def test_a_section_compose_rejects_fails_the_space_naming_the_service(server):
    assert (
        server.bay(
            "space", "create", "rejected", "--template", "broken-compose", "--runtime", "compose"
        ).returncode
        == 0
    )
    space = server.wait_phase("rejected", {"failed", "ready"}, timeout=120)
    assert space["phase"] == "failed"
    assert "service 'rejected': docker compose up failed" in space["reason"]
    assert "frobnicate" in space["reason"]


def test_an_image_that_does_not_exist_fails_the_space_with_the_image_named(server, tmp_path):
    runtime = ComposeRuntime(tmp_path / "rt")
    template = parse_template(BROKEN, file="/t/broken.yaml")
    ref = SpaceRef(name=SpaceName("unpullable"), owner="ann", template="broken-compose")
    services = resolve_services(
        template,
        space=ref.name,
        owner="ann",
        params={"case": "x"},
        overrides={},
        addresses=runtime.addresses(ref, template.services),
    )
    try:
        with pytest.raises(ServiceFailed, match="launchbay-test/does-not-exist"):
            runtime.start(ref, services["unpullable"])
    finally:
        runtime.destroy(ref)
        runtime.close()


def test_a_host_port_already_taken_is_a_clear_failure(tmp_path, busybox_image):
    runtime = ComposeRuntime(tmp_path / "rt")
    template = parse_template(SLOW, file="/t/slow.yaml")
    ref = SpaceRef(name=SpaceName("taken"), owner="ann", template="slow-compose")
    services = resolve_services(
        template,
        space=ref.name,
        owner="ann",
        params={},
        overrides={},
        addresses=runtime.addresses(ref, template.services),
    )
    port = _host_port(runtime, "taken", "db")
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", port))
    squatter.listen()
    try:
        with pytest.raises(
            ServiceFailed,
            match=r"(?s)service 'db': docker compose up failed: Error.*(address already in use|port is already allocated)",
        ):
            runtime.start(ref, services["db"])
    finally:
        squatter.close()
        runtime.destroy(ref)
        runtime.close()


def _host_port(runtime: ComposeRuntime, space: str, service: str) -> int:
    import json

    return int(json.loads((runtime.root / space / "ports.json").read_text())[service])


def test_docker_not_running_is_a_clear_error_at_create_and_changes_nothing(tmp_path, templates):
    s = ServerProcess(
        home=tmp_path / "nodocker",
        templates=templates,
        extra_env={"DOCKER_HOST": "unix:///nonexistent/docker.sock"},
    )
    s.home.mkdir()
    s.start()
    try:
        result = s.bay("space", "create", "nope", "--template", "demo", "--runtime", "compose")
        assert result.returncode == 3  # the runtime is unreachable, as the server would be
        assert "Docker is not running or not reachable" in result.stderr
        assert s.get_json("/api/v1/spaces")["total"] == 0
        doctor = s.bay("doctor")
        assert doctor.returncode == 1 and "BAD runtime compose" in doctor.stdout
    finally:
        s.stop()


def test_a_container_that_dies_after_ready_is_restarted_and_counted(server):
    create_demo(server, "flaky")
    server.wait_phase("flaky", {"ready"}, timeout=180)
    subprocess.run(
        ["docker", "kill", container_name("flaky", "api")], check=True, capture_output=True
    )
    wait_until(
        lambda: (
            next(s for s in server.space("flaky")["services"] if s["name"] == "api")["restarts"]
            == 1
        ),
        timeout=30,
        what="api restarted",
    )
    space = server.wait_phase("flaky", {"ready"}, timeout=60)
    kinds = [e["kind"] for e in server.get_json("/api/v1/spaces/flaky/events")]
    assert "degraded" in kinds and "restart" in kinds
    assert "Visits:" in httpx.get(web_url(space), follow_redirects=True).text
