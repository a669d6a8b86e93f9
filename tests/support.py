"""Helpers shared by the tests: free ports, a real server process, a real PostgreSQL."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "templates"


class Clock:
    """The engine's clock, as the test sets it."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(
    predicate: Any, *, timeout: float, interval: float = 0.1, what: str = "condition"
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


@dataclass
class ServerProcess:
    """A real `bay server` on a free port, with its own data dir, config dir and templates."""

    home: Path
    templates: Path
    extra_args: list[str] = field(default_factory=list)
    extra_env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    # Put before the server's command: e.g. `as_unprivileged(...)` to run it as a non-root user.
    wrapper: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BAY_", "LAUNCHBAY_"))}
        env["XDG_CONFIG_HOME"] = str(self.home / "config")
        env["XDG_DATA_HOME"] = str(self.home / "xdg-data")
        return env | self.extra_env

    @property
    def admin_token(self) -> str:
        return (self.data_dir / "admin-token").read_text().strip()

    def start(self) -> ServerProcess:
        with (self.home / "server.log").open("ab") as log:
            self.process = subprocess.Popen(
                [
                    *self.wrapper,
                    sys.executable,
                    "-m",
                    "launchbay",
                    "server",
                    "--port",
                    str(self.port),
                    "--data-dir",
                    str(self.data_dir),
                    "--templates",
                    str(self.templates),
                    *self.extra_args,
                ],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                # A wrapper passes on no signal: its group is stopped as one (see `stop`).
                start_new_session=bool(self.wrapper),
            )
        wait_until(self._answers, timeout=30, what=f"server on {self.url}")
        return self

    def _answers(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"server exited with {self.process.returncode}:\n{self.log()}")
        with contextlib.suppress(httpx.TransportError):
            return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
        return False

    def log(self) -> str:
        return (self.home / "server.log").read_text(errors="replace")

    def kill(self) -> None:
        """kill -9: no shutdown code runs."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        """Stop the server, then the process runtime's services it leaves running (by design
        they outlive a server): a test must leave nothing behind."""
        if self.process is not None and self.process.poll() is None:
            if self.wrapper:  # the server is a child of the wrapper, in its process group
                os.killpg(self.process.pid, signal.SIGTERM)
            else:
                self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL) if self.wrapper else self.process.kill()
                self.process.wait()
        for pid in labelled_processes(self.data_dir / "runtime" / "process", sandboxes=True):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def client(self, token: str | None = None) -> httpx.Client:
        token = token if token is not None else self.admin_token
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )

    def bay(
        self,
        *args: str,
        token: str | None = None,
        timeout: float = 120,
        extra_env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """The real `bay` CLI as a subprocess against this server."""
        env = self.env | {
            "BAY_SERVER": self.url,
            "BAY_TOKEN": token if token is not None else self.admin_token,
        }
        env |= extra_env or {}
        return subprocess.run(
            [sys.executable, "-m", "launchbay", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def get_json(self, path: str) -> Any:
        with self.client() as c:
            response = c.get(path)
            response.raise_for_status()
            return response.json()

    def start_refused(self, *args: str) -> subprocess.CompletedProcess[str]:
        """`bay server` with this server's templates, data dir and port plus `args`, for a
        start that must fail: its exit status and its one line of error."""
        return self.bay(
            "server",
            *args,
            "--templates",
            str(self.templates),
            "--data-dir",
            str(self.data_dir),
            "--port",
            str(self.port),
            token="",
            timeout=60,
        )

    def space(self, name: str) -> dict[str, Any]:
        return dict(self.get_json(f"/api/v1/spaces/{name}"))

    def wait_phase(self, name: str, phases: set[str], timeout: float = 60) -> dict[str, Any]:
        return dict(
            wait_until(
                lambda: (s := self.space(name))["phase"] in phases and s,
                timeout=timeout,
                interval=0.2,
                what=f"space {name} in {phases}",
            )
        )


def labelled_processes(
    root: Path, space: str | None = None, *, sandboxes: bool = False
) -> dict[int, dict[str, str]]:
    """Live (non-zombie) processes carrying the process runtime's labels under `root`: the
    services' own, and with `sandboxes` the bubblewrap processes that hold them too."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "environ").read_bytes()
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        state = stat.rsplit(")", 1)[1].split()[0]
        if state in ("Z", "X") or (not sandboxes and stat.split(" (", 1)[1].startswith("bwrap)")):
            continue
        env = dict(
            item.decode(errors="replace").partition("=")[::2] for item in raw.split(b"\0") if item
        )
        if env.get("LAUNCHBAY_ROOT") == str(root.resolve()) and (
            space is None or env.get("LAUNCHBAY_SPACE") == space
        ):
            found[int(entry.name)] = env
    return found


class Postgres:
    """A real PostgreSQL server for the test session, started with initdb and pg_ctl."""

    def __init__(self) -> None:
        # Its own folder under /tmp: pytest's tmp folders are private to root, and initdb
        # runs as the postgres user.
        self.base = Path(tempfile.mkdtemp(prefix="launchbay-pg-"))
        self.port = free_port()
        self.data = self.base / "pgdata"
        self.bin = self._find_bin()

    @staticmethod
    def _find_bin() -> Path:
        candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), reverse=True)
        if candidates:
            return candidates[0].parent
        found = shutil.which("initdb")
        if found:
            return Path(found).parent
        raise RuntimeError(
            "PostgreSQL is not installed: scripts/test.sh installs it (apt-get install postgresql)"
        )

    def _as_postgres(self, command: str) -> None:
        if os.geteuid() == 0:
            subprocess.run(
                ["su", "postgres", "-c", command], check=True, capture_output=True, timeout=120
            )
        else:
            subprocess.run(["sh", "-c", command], check=True, capture_output=True, timeout=120)

    def start(self) -> Postgres:
        self.base.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.base, "postgres")
        self._as_postgres(
            f"{self.bin}/initdb -D {self.data} -U postgres --auth=trust -E UTF8 >/dev/null"
        )
        self._as_postgres(
            f"{self.bin}/pg_ctl -D {self.data} -o '-p {self.port} -k /tmp -c listen_addresses=127.0.0.1 "
            f"-c max_connections=200 -c fsync=off' -l {self.data}/log -w start"
        )
        return self

    def stop(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            self._as_postgres(f"{self.bin}/pg_ctl -D {self.data} -m immediate stop")
        shutil.rmtree(self.base, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        import psycopg

        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(
            f"postgresql://postgres@127.0.0.1:{self.port}/postgres", autocommit=True
        ) as c:
            c.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


def write_template(folder: Path, name: str, body: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(body)
    return path


def json_of(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


BUSYBOX_IMAGE = "launchbay-test/busybox:local"


def build_busybox_image() -> str:
    """A base image FROM scratch with the host's static busybox: no registry is needed."""
    found = subprocess.run(
        ["docker", "image", "inspect", BUSYBOX_IMAGE], capture_output=True, check=False
    )
    if found.returncode == 0:
        return BUSYBOX_IMAGE
    busybox = shutil.which("busybox") or "/bin/busybox"
    with tempfile.TemporaryDirectory(prefix="launchbay-busybox-") as tmp:
        shutil.copy(busybox, Path(tmp) / "busybox")
        (Path(tmp) / "Dockerfile").write_text(
            "FROM scratch\nCOPY busybox /bin/busybox\n"
            'RUN ["/bin/busybox", "--install", "-s", "/bin"]\nRUN mkdir -p /tmp && chmod 1777 /tmp\n'
        )
        subprocess.run(
            ["docker", "build", "-q", "-t", BUSYBOX_IMAGE, tmp],
            check=True,
            capture_output=True,
            timeout=300,
        )
    return BUSYBOX_IMAGE


def launchbay_docker_objects(root: Path | None = None) -> list[str]:
    """Containers, networks, volumes and images that carry Launchbay's labels (of one
    runtime root)."""
    label = f"dev.launchbay.root={root.resolve()}" if root else "dev.launchbay.managed-by=launchbay"
    found = []
    for kind in ("container", "network", "volume", "image"):
        args = ["docker", kind, "ls", "-q", "--filter", f"label={label}"]
        if kind == "container":
            args.insert(3, "-a")
        out = subprocess.run(args, capture_output=True, text=True, check=True).stdout.split()
        found += [f"{kind}:{x}" for x in out]
    return found


MATERIAL = ROOT / "tests" / "material"
MATERIAL_IMAGES = (
    "shop/base:1",
    "shopdb/db:10",
    "shopcache/cache:7",
    "platform/base:1",
    "ports/multi:1",
)


def tag_material_images() -> None:
    """The images the Compose files under tests/material name: the busybox base image,
    tagged with those names."""
    base = build_busybox_image()
    for name in MATERIAL_IMAGES:
        subprocess.run(["docker", "tag", base, name], check=True, capture_output=True)


def compose_root(server: ServerProcess) -> Path:
    """Where a server's compose runtime keeps its spaces (and labels what it makes)."""
    return server.data_dir / "runtime" / "compose"


@contextlib.contextmanager
def compose_server(home: Path, templates: Path) -> Iterator[ServerProcess]:
    """A server for compose tests (reconciling every second, orphans removed after 2 s);
    whatever a failed test left of its spaces is removed after it stops."""
    from launchbay.runtimes.compose import ComposeRuntime

    server = ServerProcess(
        home=home,
        templates=templates,
        extra_args=["--reconcile-interval", "1", "--orphan-grace", "2"],
    )
    server.home.mkdir()
    server.start()
    try:
        yield server
    finally:
        server.stop()
        runtime = ComposeRuntime(compose_root(server), installation=installation_of(server))
        for name in runtime.spaces():
            runtime.destroy_orphan(name)
        runtime.close()


UNPRIVILEGED = "launchbay-test"
# Homes of servers run as that user: outside pytest's 0700 folders, and searched for
# leftovers at the end of a run as those are.
UNPRIVILEGED_HOMES = Path("/var/tmp/launchbay-test-homes")


def as_unprivileged(*writable: Path) -> list[str]:
    """A prefix that runs a command as the unprivileged user `launchbay-test` (made if
    missing), owning `writable`. The interpreter and the repository may live under root's
    0700 home: a mount namespace of the command's own shows those read-only and nothing
    else of that home (as an image that installs its Python elsewhere would)."""
    import pwd

    try:
        account = pwd.getpwnam(UNPRIVILEGED)
    except KeyError:
        subprocess.run(
            [
                "useradd",
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                UNPRIVILEGED,
            ],
            check=True,
        )
        account = pwd.getpwnam(UNPRIVILEGED)
    for path in writable:
        for item in [path, *path.rglob("*")]:
            os.chown(item, account.pw_uid, account.pw_gid, follow_symlinks=False)
    shown = {Path(p).resolve() for p in (sys.base_prefix, sys.prefix, ROOT)}
    view = ["bwrap", "--dev-bind", "/", "/", "--perms", "0755", "--tmpfs", "/root"]
    for path in sorted(shown):
        if path.is_relative_to("/root"):
            view += ["--ro-bind", str(path), str(path)]
    view += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--"]
    return [
        *view,
        "setpriv",
        f"--reuid={account.pw_uid}",
        f"--regid={account.pw_gid}",
        "--clear-groups",
        "--inh-caps=-all",
        "--",
    ]


def container_name(space: str, service: str) -> str:
    """The name of a space's service container, found by Launchbay's labels (its project
    name carries the server's installation id)."""
    names = subprocess.run(
        ["docker", "ps", "-a", "--format", "{{.Names}}",
         "--filter", f"label=dev.launchbay.space={space}",
         "--filter", f"label=dev.launchbay.service={service}"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert len(names) == 1, (space, service, names)
    return names[0]


def installation_of(server: ServerProcess) -> str:
    """The installation id a server recorded in its (SQLite) store; "" before its start."""
    import sqlite3

    try:
        with contextlib.closing(sqlite3.connect(server.data_dir / "launchbay.db")) as db:
            row = db.execute("SELECT installation FROM installation").fetchone()
    except sqlite3.Error:
        return ""
    return str(row[0]) if row else ""


@contextlib.contextmanager
def inprocess_server(settings: Any) -> Iterator[tuple[str, Any]]:
    """The server's real app (`launchbay.server.build`) served by uvicorn in a thread of
    the test, on a free port: for tests that reach inside it (its store's pool, its
    threads) while talking to it over HTTP. Yields the URL and the app."""
    import dataclasses
    import threading

    import uvicorn

    from launchbay.server import build

    settings = dataclasses.replace(settings, port=free_port())
    app = build(settings)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=settings.port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, name="test-uvicorn", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{settings.port}"
    wait_until(lambda: server.started, timeout=30, what="the in-process server to listen")
    try:
        yield url, app
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def stop_watch_threads(timeout: float = 5.0) -> int:
    """Stop the Kubernetes watch caches that tests' runtimes left running (a runtime not
    closed), so that none keeps calling an emulated cluster that is gone for the rest of the
    run, nor runs while the interpreter shuts down (a run once aborted there). How many."""
    import threading

    from launchbay.runtimes.kubernetes.cache import WatchCache

    stopped = []
    for thread in threading.enumerate():
        cache = getattr(getattr(thread, "_target", None), "__self__", None)
        if isinstance(cache, WatchCache):
            cache.stop()
            stopped.append(thread)
    for thread in stopped:
        thread.join(timeout)
    return len(stopped)
