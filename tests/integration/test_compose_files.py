"""Local Spaces from a team's own Compose file, run as it is (tests/material/compose), on a
real Docker Engine with the real Compose v2."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.support import (
    MATERIAL,
    ROOT,
    ServerProcess,
    compose_root,
    compose_server,
    container_name,
    launchbay_docker_objects,
    tag_material_images,
)


def readme_template() -> str:
    """The README's example of a template on a team's Compose file, as written."""
    readme = (ROOT / "README.md").read_text()
    start = readme.index("<!-- readme-test: compose-template -->")
    block = re.search(r"```yaml\n(.*?)```", readme[start:], re.S)
    assert block is not None
    return block.group(1)


PLATFORM = """\
name: platform
ttl: {default: 1h, max: 2h}
params:
  GREETING: {default: hello}
  profiles: {default: ""}
compose:
  file: ../material/compose/platform/compose.yaml
  profiles: ["${params.profiles}"]
services:
  api:
    overridable: {env: [GREETING], values: [replicas]}
"""

PORTS = """\
name: ports
ttl: {default: 1h, max: 2h}
compose:
  file: ../material/compose/ports/compose.yaml
services:
  gateway:
    endpoints: [{name: admin, port: 8081, path: /index.html}]
    compose:
      environment:
        METRICS: ${services.metrics.url}
        SELF: ${services.gateway.host}:${services.gateway.port}
  metrics:
    # Only exposed, never published: the check knocks on the container's own address.
    health: {tcp: true, interval: 200ms, timeout: 30s}
"""


@pytest.fixture
def server(tmp_path: Path, busybox_image: str):
    tag_material_images()
    shutil.copytree(MATERIAL, tmp_path / "material")
    templates = tmp_path / "templates"
    templates.mkdir()
    for name, body in (("platform", PLATFORM), ("ports", PORTS)):
        (templates / f"{name}.yaml").write_text(body)
    # The README's template, next to its own file (`../docker-compose.yml`): the shop's.
    (templates / "shop.yaml").write_text(readme_template())
    shutil.copytree(MATERIAL / "compose" / "shop", tmp_path, dirs_exist_ok=True)
    with compose_server(tmp_path / "home", templates) as s:
        yield s


def create(server: ServerProcess, name: str, template: str, *args: str) -> None:
    result = server.bay(
        "space", "create", name, "--template", template, "--runtime", "compose", *args
    )
    assert result.returncode == 0, result.stderr


def ready(server: ServerProcess, name: str) -> dict:
    space = server.wait_phase(name, {"ready", "failed", "degraded"}, timeout=240)
    assert space["phase"] == "ready", space["reason"]
    return space


def service(space: dict, name: str) -> dict:
    return next(s for s in space["services"] if s["name"] == name)


def events(server: ServerProcess, name: str) -> list[dict]:
    return server.get_json(f"/api/v1/spaces/{name}/events?limit=500")


def inspected(space: str, service_name: str) -> dict:
    """`docker inspect` of the service's (first) container."""
    ids = subprocess.run(
        [
            "docker",
            "ps",
            "-aq",
            "--filter",
            f"label=dev.launchbay.space={space}",
            "--filter",
            f"label=dev.launchbay.service={service_name}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    found = subprocess.run(
        ["docker", "inspect", ids[0]], capture_output=True, text=True, check=True
    )
    return json.loads(found.stdout)[0]


def container_env(space: str, service_name: str) -> dict[str, str | None]:
    pairs = (item.partition("=") for item in inspected(space, service_name)["Config"]["Env"])
    return {name: value if equals else None for name, equals, value in pairs}


def test_a_web_db_cache_stack_runs_unchanged_twice_side_by_side_and_leaves_nothing(server):
    # Its file fixes the container name and host port 8080: two spaces would clash if
    # Launchbay did not take both off (by its override, never by editing the file).
    create(server, "shop-a", "shop")
    create(server, "shop-b", "shop", "--param", "SHOP_MODE=demo", "--set", "web.env.FEATURE_X=1")
    a, b = ready(server, "shop-a"), ready(server, "shop-b")
    assert container_env("shop-b", "web")["FEATURE_X"] == "1"  # --set is applied, not dropped
    for space, mode in ((a, "test"), (b, "demo")):
        url = service(space, "web")["endpoints"]["shop"]
        assert not url.endswith(":8080/")
        page = httpx.get(url).text
        # Two networks (web reaches db on the back one), the file secret, and a
        # pass-through variable (`- SHOP_MODE`) filled from the space's parameter.
        assert "secret: present" in page and "db answers" in page, page
        assert "currency: EUR" in page  # a top-level config, relative to the file
        assert f"mode: {mode}" in page
    # Compose gated web on db's own healthcheck: db was ready before web.
    kinds = [(e["kind"], e["message"].split(":")[0]) for e in reversed(events(server, "shop-a"))]
    assert kinds.index(("service-ready", "db")) < kinds.index(("service-ready", "web"))
    built = subprocess.run(
        ["docker", "image", "ls", "-q", "--filter", "label=dev.launchbay.space=shop-a"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert built, "the web image built for the space carries its labels"
    for name in ("shop-a", "shop-b"):
        assert server.bay("space", "delete", name, "--wait").returncode == 0
    assert launchbay_docker_objects(compose_root(server)) == []


def test_anchors_merge_keys_escapes_and_a_one_shot_job_that_runs_once(server):
    create(server, "plat", "platform", "--param", "GREETING=hi")
    space = ready(server, "plat")
    first_ready = space["ready_seconds"]
    statuses = {s["name"]: s["status"] for s in space["services"]}
    # The debug profile was not asked for; the migration is a job that completed.
    assert statuses == {"migrate": "completed", "api": "ready", "worker": "ready"}
    url = service(space, "api")["endpoints"]["8000"]
    # `$${GREETING}` reached the container's shell as `${GREETING}` (the healthcheck that
    # compares `$${HOSTNAME}` with `$$(hostname)` passed, or api would not be ready), and
    # `${GREETING:-hello}` was filled from the space's parameter.
    assert httpx.get(url).text == "greeting: hi\nmigrations: 1\n"
    # Reconcile passes leave a completed job alone; a sleep and a wake keep the volume
    # and do not run the job again.
    server.wait_phase("plat", {"ready"})
    assert server.bay("space", "sleep", "plat").returncode == 0
    server.wait_phase("plat", {"sleeping"}, timeout=60)
    assert server.bay("space", "wake", "plat").returncode == 0
    space = ready(server, "plat")
    assert service(space, "migrate")["status"] == "completed"
    assert space["ready_seconds"] == first_ready  # from create; the wake does not replace it
    assert httpx.get(service(space, "api")["endpoints"]["8000"]).text.endswith("migrations: 1\n")
    restarts = [e for e in events(server, "plat") if e["kind"] == "restart"]
    assert restarts == []
    assert server.bay("space", "delete", "plat", "--wait").returncode == 0
    assert launchbay_docker_objects(compose_root(server)) == []


def test_a_profile_is_chosen_per_space_and_an_unknown_one_is_refused(server):
    create(server, "plat-debug", "platform", "--param", "profiles=debug")
    space = ready(server, "plat-debug")
    assert service(space, "debug")["status"] == "ready"
    refused = server.bay(
        "space",
        "create",
        "plat-typo",
        "--template",
        "platform",
        "--runtime",
        "compose",
        "--param",
        "profiles=debgu",
    )
    assert refused.returncode != 0
    assert "unknown Compose profile 'debgu'" in refused.stderr and "debug" in refused.stderr
    assert server.bay("space", "show", "plat-typo").returncode != 0
    assert server.bay("space", "delete", "plat-debug", "--wait").returncode == 0


def test_every_published_port_is_an_endpoint_udp_kept_and_exposed_ports_are_addresses(server):
    create(server, "gw", "ports")
    space = ready(server, "gw")
    endpoints = service(space, "gateway")["endpoints"]
    assert set(endpoints) == {"admin", "8080", "5353/udp", "9100", "9101"}
    assert endpoints["5353/udp"].startswith("udp://127.0.0.1:")
    assert httpx.get(endpoints["8080"]).text == "main\n"
    assert httpx.get(endpoints["9100"]).text == "main\n"  # a range: each port its own
    assert httpx.get(endpoints["9101"]).text == "admin\n"
    assert httpx.get(endpoints["admin"]).text == "admin\n"
    assert ":18081" not in endpoints["admin"]  # the file's fixed host port is not taken
    udp = subprocess.run(
        ["docker", "port", container_name("gw", "gateway"), "5353/udp"],
        capture_output=True,
        text=True,
    )
    assert udp.returncode == 0 and "127.0.0.1:" in udp.stdout, udp.stderr
    # Two replicas publishing one port: each on a loopback port Docker chose.
    (replica,) = service(space, "replicas")["endpoints"].values()
    assert httpx.get(replica).text == "replica\n"
    env = container_env("gw", "gateway")
    # `${services.S.port}` is the first container port, published or only exposed.
    assert env["METRICS"] == "http://metrics:9090" and env["SELF"] == "gateway:8080"
    assert server.bay("space", "delete", "gw", "--wait").returncode == 0


BAD = {
    "rejected": "services:\n  app:\n    image: platform/base:1\n    frobnicate: yes\n",
    # A path of the machine's, shared by every space: Docker would make it empty. (A missing
    # relative one is each space's own, made empty: test_compose_isolation.)
    "missing-bind": "services:\n  app:\n    image: platform/base:1\n    volumes: [/launchbay-not-here:/data]\n",
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_file_compose_refuses_or_a_missing_bind_source_is_refused_at_create(
    server, tmp_path, case
):
    folder = tmp_path / "material" / case
    folder.mkdir()
    (folder / "compose.yaml").write_text(BAD[case])
    (server.templates / f"{case}.yaml").write_text(
        f"name: {case}\nttl: {{default: 1h, max: 2h}}\ncompose: {{file: ../material/{case}/compose.yaml}}\n"
    )
    result = server.bay("space", "create", "bad", "--template", case, "--runtime", "compose")
    assert result.returncode == 2, result.stderr
    line = result.stderr.strip()
    assert "Traceback" not in result.stderr
    if case == "rejected":
        assert f"{folder / 'compose.yaml'}:4:" in line and "frobnicate" in line
    else:
        assert "not-here" in line and "does not exist" in line
    assert server.bay("space", "show", "bad").returncode != 0
    assert not Path("/launchbay-not-here").exists()
    assert launchbay_docker_objects(compose_root(server)) == []


def test_a_missing_file_and_an_override_the_runtime_cannot_apply_are_refused(server, tmp_path):
    (server.templates / "nofile.yaml").write_text(
        "name: nofile\nttl: {default: 1h, max: 2h}\ncompose: {file: ../material/none.yaml}\n"
    )
    problems = server.get_json("/api/v1/templates/-/problems")["problems"]
    (message,) = problems[str(server.templates / "nofile.yaml")]
    assert ":3: compose.file: cannot read" in message and "none.yaml" in message
    # A create says why the template cannot be used, not that there is no such template.
    refused = server.bay("space", "create", "nf", "--template", "nofile", "--runtime", "compose")
    assert refused.returncode == 2, refused.stderr
    assert "template 'nofile' is not valid:" in refused.stderr and "none.yaml" in refused.stderr
    for key, why in (
        ("api.version=pr-1", "runs what its Compose file says"),
        ("api.values.replicas=2", "helm values apply to runtimes of Helm charts only"),
    ):
        result = server.bay(
            "space",
            "create",
            "setx",
            "--template",
            "platform",
            "--runtime",
            "compose",
            "--set",
            key,
        )
        assert result.returncode == 2 and why in result.stderr, result.stderr
    assert server.bay("space", "show", "setx").returncode != 0


def test_a_failure_names_the_service_and_the_line_that_says_why(server, tmp_path):
    folder = tmp_path / "material" / "crash"
    folder.mkdir()
    (folder / "compose.yaml").write_text(
        textwrap.dedent("""\
        services:
          db:
            image: platform/base:1
            command: ["sh", "-c", "echo 'FATAL: cannot open data directory' >&2; exit 3"]
          app:
            image: platform/base:1
            command: ["sleep", "100"]
            depends_on: {db: {condition: service_healthy}}
        """)
    )
    (server.templates / "crash.yaml").write_text(
        "name: crash\nttl: {default: 1h, max: 2h}\ncompose: {file: ../material/crash/compose.yaml}\n"
    )
    create(server, "crash", "crash")
    space = server.wait_phase("crash", {"ready", "failed"}, timeout=120)
    assert space["phase"] == "failed"
    assert space["reason"].startswith("service 'db':"), space["reason"]
    assert "FATAL: cannot open data directory" in space["reason"]
    assert server.bay("space", "delete", "crash", "--wait").returncode == 0


SECTIONS = """\
name: sections
ttl: {default: 1h, max: 2h}
x-base: &base
  image: platform/base:1
  init: true
services:
  db:
    compose:
      <<: *base
      command: ["sh", "-c", "sleep 3 && touch /tmp/ready && exec sleep 1000000"]
      healthcheck:
        test: ["CMD-SHELL", "[ \\"$${HOSTNAME}\\" = \\"$$(hostname)\\" ] && test -f /tmp/ready"]
        interval: 500ms
        retries: 60
  migrate:
    one_shot: true
    depends_on: [db]
    compose: {<<: *base, command: ["sh", "-c", "sleep 1"]}
  app:
    depends_on: [migrate]
    compose:
      build: {context: ../material/sections-app}
      environment: ["PASSED_THROUGH", "SET=1"]
"""


def moment(docker_time: str) -> datetime:
    """A Docker timestamp (nanoseconds, `Z`) as a datetime."""
    return datetime.fromisoformat(docker_time[:26].rstrip("Z") + "+00:00")


def test_per_service_sections_wait_on_docker_health_keep_escapes_and_run_one_shot_jobs(
    server, tmp_path
):
    app = tmp_path / "material" / "sections-app"
    app.mkdir()
    (app / "Dockerfile").write_text('FROM platform/base:1\nCMD ["sleep", "1000000"]\n')
    (server.templates / "sections.yaml").write_text(SECTIONS)
    create(server, "sec", "sections")
    space = ready(server, "sec")
    assert {s["name"]: s["status"] for s in space["services"]} == {
        "db": "ready",
        "migrate": "completed",
        "app": "ready",
    }
    # Without a template `health:`, db was ready when Docker's own healthcheck said so (the
    # one comparing `$${HOSTNAME}` with `$$(hostname)`: the escapes reached Compose), and
    # what depends on it started only after that.
    # (db's check cannot pass in the 3 s before it creates /tmp/ready.)
    db_started = inspected("sec", "db")["State"]["StartedAt"]
    migrate_started = inspected("sec", "migrate")["State"]["StartedAt"]
    assert moment(migrate_started) - moment(db_started) >= timedelta(seconds=3)
    env = container_env("sec", "app")
    # Passed through as Compose does (unset here), not turned into an empty string.
    assert env["SET"] == "1" and env.get("PASSED_THROUGH") is None
    assert server.bay("space", "delete", "sec", "--wait").returncode == 0
    assert launchbay_docker_objects(compose_root(server)) == []  # the image built for it too


def test_template_validate_runs_composes_own_check_and_says_where(tmp_path, busybox_image):
    folder = tmp_path / "templates"
    folder.mkdir()
    (tmp_path / "bad.yaml").write_text(BAD["rejected"])
    (tmp_path / "good.yaml").write_text(BAD["rejected"].replace("    frobnicate: yes\n", ""))
    for name in ("bad", "good"):
        (folder / f"{name}.yaml").write_text(
            f"name: {name}\nttl: {{default: 1h, max: 2h}}\ncompose: {{file: ../{name}.yaml}}\n"
        )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "launchbay",
            "template",
            "validate",
            str(folder / "bad.yaml"),
            str(folder / "good.yaml"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert f"{tmp_path / 'bad.yaml'}:4: Compose refuses the file:" in result.stderr
    assert "frobnicate" in result.stderr and "Traceback" not in result.stderr
    assert "template 'good' is valid (1 service)" in result.stdout


def test_a_template_overlay_compose_refuses_is_refused_at_create_and_by_validate(server, tmp_path):
    (server.templates / "overlay.yaml").write_text(
        "name: overlay\nttl: {default: 1h, max: 2h}\n"
        "compose: {file: ../material/compose/ports/compose.yaml}\n"
        "services:\n  gateway:\n    compose: {restart_polcy: always, environment: {U: '${services.metrics.url}'}}\n"
    )
    refused = server.bay("space", "create", "ov", "--template", "overlay", "--runtime", "compose")
    assert refused.returncode == 2, refused.stderr
    assert "overlay.yaml: the template's compose: sections: Compose refuses them" in refused.stderr
    assert "restart_polcy" in refused.stderr
    assert server.bay("space", "show", "ov").returncode != 0
    validate = server.bay("template", "validate", str(server.templates / "overlay.yaml"))
    assert validate.returncode == 2 and "restart_polcy" in validate.stderr
