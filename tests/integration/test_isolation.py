"""Isolation you can prove: from inside a service, nothing of the server's and nothing of
another space's can be read or signalled. Each read of the outside probe is asserted on
its own, on the process runtime with the server as root and as an unprivileged user,
and from a compose service.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import (
    BUSYBOX_IMAGE,
    UNPRIVILEGED_HOMES,
    ServerProcess,
    as_unprivileged,
    labelled_processes,
    wait_until,
    write_template,
)

# Tries each read and the signal, printing one line each; then stays up.
PROBE = """
import os, signal, sys, time
def attempt(name, act):
    try:
        act()
        print(name + ": DONE", flush=True)
    except OSError as e:
        print(name + ": REFUSED " + type(e).__name__, flush=True)
for item in sys.argv[1].split(","):
    name, _, path = item.partition("=")
    attempt(name, lambda: open(path, "rb").read())
attempt("server-environ", lambda: open("/proc/" + sys.argv[2] + "/environ", "rb").read())
attempt("server-cmdline", lambda: open("/proc/" + sys.argv[2] + "/cmdline", "rb").read())
attempt("victim-environ", lambda: open("/proc/" + sys.argv[3] + "/environ", "rb").read())
attempt("victim-signal", lambda: os.kill(int(sys.argv[3]), signal.SIGTERM))
print("PROBED", flush=True)
time.sleep(600)
"""

# The probe's template: told where the secrets, the server and the victim's process are.
PEEK = """\
name: peek
ttl: {default: 1h, max: 2h}
params:
  files: {default: ""}
  server: {default: "1"}
  victim: {default: "1"}
services:
  probe:
"""

TEMPLATES = {
    "victim": """\
name: victim
ttl: {default: 1h, max: 2h}
services:
  db:
    overridable: {env: [DEBUG]}
    health: {tcp: true, interval: 100ms, timeout: 20s}
    process:
      command: [python3, -m, http.server, "${services.db.port}", --bind, 127.0.0.1]
""",
    "peek": PEEK
    + f"""\
    process:
      command: [python3, -c, {json.dumps(PROBE)}, "${{params.files}}", "${{params.server}}", "${{params.victim}}"]
""",
}

SECRETS = ("admin-token", "session-secret", "launchbay.db", "server.json")


def probe_results(server: ServerProcess, *, runtime: str = "process") -> dict[str, str]:
    """Make a victim space with a secret in its environment, then a probe space told where
    the server's secrets, the server and the victim's process are; what it could do."""
    made = server.bay(
        "space", "create", "bob", "--template", "victim",
        "--set", "db.env.DEBUG=bobs-db-password", "--wait",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr + made.stdout
    victims = labelled_processes(server.data_dir / "runtime" / "process", "bob")
    victim = max(victims)  # the service itself (its sandbox's processes come first)
    assert "bobs-db-password" in (Path("/proc") / str(victim) / "environ").read_text()
    files = ",".join(f"{name}={server.data_dir / name}" for name in SECRETS)
    assert server.process is not None
    made = server.bay(
        "space", "create", "eve", "--template", "peek", "--runtime", runtime,
        "--param", f"files={files}", "--param", f"server={server.process.pid}",
        "--param", f"victim={victim}", "--wait",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr + made.stdout
    log = wait_until(
        lambda: (text := server.bay("space", "logs", "eve", "probe").stdout) and "PROBED" in text
        and text,
        timeout=30,
        what="the probe's report",
    )  # fmt: skip
    assert victim in labelled_processes(server.data_dir / "runtime" / "process", "bob")
    return dict(line.split(": ", 1) for line in log.splitlines() if ": " in line)


EXPECTED = [*SECRETS, "server-environ", "server-cmdline", "victim-environ", "victim-signal"]


@pytest.fixture(scope="module")
def probed_as_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """What the probe could do on a server running as root (one server for every read)."""
    if os.geteuid() != 0:
        pytest.skip("the server as root needs root")
    home = tmp_path_factory.mktemp("as-root")
    templates = home / "templates"
    for name, body in TEMPLATES.items():
        write_template(templates, name, body)
    s = ServerProcess(home=home / "home", templates=templates)
    s.home.mkdir()
    s.start()
    try:
        yield probe_results(s)
    finally:
        s.stop()


@pytest.mark.parametrize("read", EXPECTED)
def test_a_process_service_of_a_root_server_cannot_reach_the_server_or_another_space(
    probed_as_root, read
):
    assert probed_as_root[read].startswith("REFUSED"), (read, probed_as_root)


@pytest.fixture
def unprivileged(templates: Path) -> Iterator[ServerProcess]:
    """A server running as an unprivileged user (as the official image runs it), with a
    home of its own that user owns."""
    if os.geteuid() != 0:
        pytest.skip("making the unprivileged user needs root")
    UNPRIVILEGED_HOMES.mkdir(exist_ok=True)
    UNPRIVILEGED_HOMES.chmod(0o755)
    home = Path(tempfile.mkdtemp(dir=UNPRIVILEGED_HOMES))
    shutil.copytree(templates.parent.parent, home / "material")
    for name, body in TEMPLATES.items():
        write_template(home / "material" / "templates", name, body)
    (home / "home").mkdir()
    s = ServerProcess(home=home / "home", templates=home / "material" / "templates")
    s.wrapper = as_unprivileged(home)
    s.start()
    yield s
    s.stop()
    shutil.rmtree(home, ignore_errors=True)


def test_a_process_service_of_an_unprivileged_server_cannot_reach_the_server_or_another_space(
    unprivileged,
):
    doctor = json.loads(unprivileged.bay("doctor", "-o", "json").stdout)  # Docker: not theirs
    process = next(c for c in doctor if c["check"] == "runtime process")
    assert "each in a sandbox" in process["detail"], process
    results = probe_results(unprivileged)
    for read in EXPECTED:
        assert results[read].startswith("REFUSED"), (read, results)


def test_services_run_as_the_servers_user_only_where_asked_and_then_for_admins_only(
    tmp_path, templates
):
    """`--process-isolation none` (a laptop's own server) is the only way to run services
    unconfined; the runtime is then kept to admins and says why."""
    for name, body in TEMPLATES.items():
        write_template(templates, name, body)
    s = ServerProcess(
        home=tmp_path / "home", templates=templates, extra_args=["--process-isolation", "none"]
    )
    s.home.mkdir()
    s.start()
    try:
        assert "the process runtime is for admins only: isolation: none" in s.log()
        token = s.bay("user", "create", "alice").stdout.strip()
        refused = s.bay("space", "create", "a1", "--template", "victim", token=token)
        assert refused.returncode == 4, refused.stderr
    finally:
        s.stop()


COMPOSE_PEEK = (
    PEEK
    + f"""\
    compose:
      image: {BUSYBOX_IMAGE}
      command:
        - sh
        - -c
        - |
          for item in $$(echo "${{params.files}}" | tr , ' '); do
            name=$${{item%%=*}}; path=$${{item#*=}}
            cat "$$path" >/dev/null 2>&1 && echo "$$name: DONE" || echo "$$name: REFUSED"
          done
          cat /proc/${{params.server}}/environ >/dev/null 2>&1 && echo "server-environ: DONE" || echo "server-environ: REFUSED"
          cat /proc/${{params.server}}/cmdline >/dev/null 2>&1 && echo "server-cmdline: DONE" || echo "server-cmdline: REFUSED"
          cat /proc/${{params.victim}}/environ >/dev/null 2>&1 && echo "victim-environ: DONE" || echo "victim-environ: REFUSED"
          kill -TERM ${{params.victim}} 2>/dev/null && echo "victim-signal: DONE" || echo "victim-signal: REFUSED"
          echo PROBED; exec sleep 600
"""
)


def test_a_compose_service_cannot_reach_the_server_or_another_space(
    tmp_path, templates, busybox_image
):
    from tests.support import compose_server

    write_template(templates, "victim", TEMPLATES["victim"])
    write_template(templates, "peek", COMPOSE_PEEK)
    with compose_server(tmp_path / "home", templates) as server:
        results = probe_results(server, runtime="compose")
        for read in EXPECTED:
            assert results[read].startswith("REFUSED"), (read, results)
        server.bay("space", "delete", "eve", "--wait")
        server.bay("space", "delete", "bob", "--wait")
