"""A space's data is its own, and a server touches only what its own installation made: on
a real Docker Engine with the real Compose v2."""

from __future__ import annotations

import subprocess
import textwrap
import time
from pathlib import Path

import pytest

from tests.support import (
    BUSYBOX_IMAGE,
    compose_root,
    compose_server,
    launchbay_docker_objects,
    wait_until,
    write_template,
)

TEAM_FILE = textwrap.dedent(f"""\
    services:
      db:
        image: {BUSYBOX_IMAGE}
        command: [sh, -c, "echo from-$$LAUNCHBAY_SPACE > /data/$$LAUNCHBAY_SPACE.txt; exec sleep 600"]
        volumes:
          - ./data:/data
          - ./config:/config:ro
          - ./cache:/cache
""")

TEMPLATE = """\
name: binds
ttl: {default: 1h, max: 2h}
compose:
  file: ../team/compose.yaml
services:
  db: {}
"""


@pytest.fixture
def team(templates: Path) -> Path:
    """A team's folder: its Compose file, a data folder with a seed file, a config folder;
    `./cache` is missing (Compose would create it)."""
    folder = templates.parent / "team"
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "seed.txt").write_text("seeded\n")
    (folder / "config").mkdir()
    (folder / "config" / "app.conf").write_text("shared\n")
    (folder / "compose.yaml").write_text(TEAM_FILE)
    return folder


def in_container(space: str, *command: str) -> str:
    ids = subprocess.run(
        ["docker", "ps", "-q", "--filter", f"label=dev.launchbay.space={space}"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert len(ids) == 1, ids
    done = subprocess.run(
        ["docker", "exec", ids[0], *command], capture_output=True, text=True, check=False
    )
    return done.stdout


def test_two_spaces_each_get_their_own_copy_of_a_writable_bind(
    tmp_path, templates, team, busybox_image
):
    write_template(templates, "binds", TEMPLATE)
    with compose_server(tmp_path / "home", templates) as server:
        for name in ("bind-a", "bind-b"):
            made = server.bay("space", "create", name, "--template", "binds", "--wait")
            assert made.returncode == 0, made.stderr + made.stdout
        for me, other in (("bind-a", "bind-b"), ("bind-b", "bind-a")):
            seen = wait_until(
                lambda me=me: (ls := in_container(me, "ls", "/data")) and f"{me}.txt" in ls and ls,
                timeout=20,
                what=f"{me}'s own file",
            )
            assert "seed.txt" in seen, seen  # started from the team's folder as it was
            assert f"{other}.txt" not in seen, seen  # nothing of the other space's
            assert in_container(me, "cat", "/config/app.conf") == "shared\n"  # read-only: shared
            assert in_container(me, "ls", "-d", "/cache").strip() == "/cache"  # made per space
        assert sorted(p.name for p in (team / "data").iterdir()) == ["seed.txt"]
        assert not (team / "cache").exists()  # the team's folder is never written
        copies = compose_root(server) / "bind-a" / "binds"
        assert (copies / "data" / "bind-a.txt").read_text() == "from-bind-a\n"
        shown = server.bay("template", "show", "binds")
        assert "./data" in shown.stdout and "own copy" in shown.stdout, shown.stdout
        for name in ("bind-a", "bind-b"):
            assert server.bay("space", "delete", name, "--wait").returncode == 0
            assert not (compose_root(server) / name).exists()  # its copy went with it
        assert sorted(p.name for p in (team / "data").iterdir()) == ["seed.txt"]


def test_a_bind_the_template_names_shared_is_the_teams_folder(
    tmp_path, templates, team, busybox_image
):
    write_template(
        templates,
        "binds",
        TEMPLATE.replace("  file: ../team/compose.yaml\n", "  file: ../team/compose.yaml\n  shared_binds: [./data]\n"),
    )  # fmt: skip
    with compose_server(tmp_path / "home", templates) as server:
        shown = server.bay("template", "show", "binds")
        assert "shared by every space" in shown.stdout, shown.stdout
        made = server.bay("space", "create", "bind-s", "--template", "binds", "--wait")
        assert made.returncode == 0, made.stderr + made.stdout
        wait_until(lambda: (team / "data" / "bind-s.txt").exists(), timeout=20, what="the write")
        assert server.bay("space", "delete", "bind-s", "--wait").returncode == 0
        assert (team / "data" / "bind-s.txt").exists()


ONE = f"""\
name: one
ttl: {{default: 1h, max: 2h}}
services:
  box:
    compose: {{image: {BUSYBOX_IMAGE}, command: [sleep, "600"]}}
"""


def container_of(server, space: str) -> str:
    """The id of the space's one container, as the server's own runtime sees it."""
    shown = server.bay("space", "show", space, "-o", "json")
    assert shown.returncode == 0, shown.stderr
    root = compose_root(server)
    ids = subprocess.run(
        ["docker", "ps", "-q", "--no-trunc", "--filter", f"label=dev.launchbay.root={root}",
         "--filter", f"label=dev.launchbay.space={space}"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert len(ids) == 1, ids
    return ids[0]


@pytest.mark.timeout(900)  # twenty creates and deletes, on a shared machine
def test_two_servers_on_one_docker_engine_each_keep_their_own_space_of_one_name(
    tmp_path, templates, busybox_image
):
    write_template(templates, "one", ONE)
    with (
        compose_server(tmp_path / "a", templates) as a,
        compose_server(tmp_path / "b", templates) as b,
    ):
        for server in (a, b):
            made = server.bay("space", "create", "same", "--template", "one", "--wait")
            assert made.returncode == 0, made.stderr + made.stdout
        kept = {id(a): container_of(a, "same"), id(b): container_of(b, "same")}
        assert kept[id(a)] != kept[id(b)]
        assert json_installation(a) != json_installation(b)
        for round_ in range(20):  # ten of each server's
            mover, keeper = (a, b) if round_ % 2 == 0 else (b, a)
            assert mover.bay("space", "delete", "same", "--wait").returncode == 0
            time.sleep(2.5)  # the mover's orphan sweep (grace 2 s) has looked at everything
            made = mover.bay("space", "create", "same", "--template", "one", "--wait")
            assert made.returncode == 0, made.stderr + made.stdout
            kept[id(mover)] = container_of(mover, "same")
            assert container_of(keeper, "same") == kept[id(keeper)], f"round {round_}"
            assert keeper.bay("space", "show", "same", "-o", "json").returncode == 0
        for server in (a, b):
            assert server.bay("space", "delete", "same", "--wait").returncode == 0


def json_installation(server) -> str:
    import json

    doctor = json.loads(server.bay("doctor", "-o", "json").stdout)
    return next(c["detail"] for c in doctor if c["check"] == "installation")


def test_an_installation_id_and_values_that_read_as_numbers_stay_strings_in_compose(
    tmp_path, templates, team, busybox_image
):
    # Installation ids are six hex digits: `642e17` is a float and `093849` an integer to
    # Compose's YAML reader. Written plain, the label came back `6.42e+19`: the server
    # then found none of its containers (the space failed: "no container") and its delete
    # left them all behind. One server in ten drew such an id.
    import sqlite3

    write_template(
        templates,
        "binds",
        TEMPLATE.replace("db: {}", "db: {overridable: {env: [EXPONENT, DIGITS]}}"),
    )
    write_template(templates, "one", ONE)
    with compose_server(tmp_path / "home", templates) as server:
        server.stop()
        with sqlite3.connect(server.data_dir / "launchbay.db") as db:
            db.execute("UPDATE installation SET installation = '642e17'")
        server.start()
        assert json_installation(server) == "642e17"
        made = server.bay(
            "space", "create", "num-a", "--template", "binds", "--wait",
            "--set", "db.env.EXPONENT=1e5", "--set", "db.env.DIGITS=093849",
        )  # fmt: skip
        assert made.returncode == 0, made.stderr + made.stdout
        made = server.bay("space", "create", "num-b", "--template", "one", "--wait")
        assert made.returncode == 0, made.stderr + made.stdout
        for space in ("num-a", "num-b"):
            labels = inspect(container_of(server, space))["Config"]["Labels"]
            assert labels["dev.launchbay.installation"] == "642e17", labels
        env = inspect(container_of(server, "num-a"))["Config"]["Env"]
        assert {"EXPONENT=1e5", "DIGITS=093849"} <= set(env), env
        for space in ("num-a", "num-b"):
            assert server.bay("space", "delete", space, "--wait").returncode == 0
        assert launchbay_docker_objects(compose_root(server)) == []


def inspect(container: str) -> dict:
    import json

    done = subprocess.run(
        ["docker", "inspect", container], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)[0]
