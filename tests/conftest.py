from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from launchbay.store.db import Store, sqlite_url
from tests.support import (
    EXAMPLES,
    ROOT,
    UNPRIVILEGED_HOMES,
    Postgres,
    ServerProcess,
    stop_watch_threads,
)


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    server = Postgres().start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A migrated store of its own for each test, on SQLite and on a real PostgreSQL."""
    if request.param == "sqlite":
        url = sqlite_url(tmp_path)
    else:
        url = request.getfixturevalue("postgres").new_database()
    s = Store(url)
    s.migrate()
    yield s
    s.close()


@pytest.fixture(scope="session")
def busybox_image() -> str:
    """The compose tests' base image, built locally (no registry is reachable here)."""
    from tests.support import build_busybox_image

    return build_busybox_image()


@pytest.fixture(scope="module")
def kube_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, object]]:
    """An emulated Kubernetes API (kmock), a test kubelet playing the cluster's part, and the
    real helm binary for rendering charts. One per test module: the kubelet lists every
    object at each tick, so a cluster shared by the whole run grew slower with each module
    that used it (the runtime contract's waits, late in the run, timed out)."""
    import sys

    from launchbay.runtimes.kubernetes.helm import Helm
    from tests.kube_emulator import Kubelet, emulated_cluster

    home = tmp_path_factory.mktemp("helm-home")
    env = dict(os.environ) | {
        f"HELM_{k}_HOME": str(home / k.lower()) for k in ("CACHE", "CONFIG", "DATA")
    }
    helm = Helm(shutil.which("helm") or str(Path(sys.executable).parent / "helm"), env=env)
    with emulated_cluster() as url:
        kubelet = Kubelet(url, prefix="lbt-")
        yield url, helm
        kubelet.stop()
        stop_watch_threads()


@pytest.fixture
def templates(tmp_path: Path) -> Path:
    """A templates folder with a copy of the examples, next to their services."""
    folder = tmp_path / "examples" / "templates"
    shutil.copytree(
        EXAMPLES.parent, tmp_path / "examples", ignore=shutil.ignore_patterns("__pycache__")
    )
    return folder


@pytest.fixture
def server(tmp_path: Path, templates: Path) -> Iterator[ServerProcess]:
    s = ServerProcess(
        home=tmp_path / "home",
        templates=templates,
        extra_args=[
            "--sweep-interval",
            "0.5",
            "--reconcile-interval",
            "1",
            "--orphan-grace",
            "2",
            "--min-ttl",
            "1s",
        ],
    )
    s.home.mkdir()
    s.start()
    yield s
    s.stop()


@pytest.fixture
def bay(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    """The CLI in-process, with a config folder of its own and no BAY_* variables:
    `bay(*args)` gives its exit status, standard output and standard error. (Modules that
    test the engine name their own assembly `bay`.)"""
    import sys

    from launchbay.cli.main import main

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    for name in ("BAY_SERVER", "BAY_TOKEN", "BAY_CONTEXT"):
        monkeypatch.delenv(name, raising=False)

    def run(*args: str) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["bay", *args])
        try:
            main()
            code = 0
        except SystemExit as e:
            code = int(e.code or 0)
        out, err = capsys.readouterr()
        return code, out, err

    return run


# Tests that need an outside component are marked by the fixtures they use, so that
# `pytest -m "not docker"` and the like run the rest; the README's command runs them all.
_MARK_BY_FIXTURE = {
    "postgres": "postgres",
    "busybox_image": "docker",
    "kube_cluster": "helm",
}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        callspec = getattr(item, "callspec", None)
        params = [str(v) for v in callspec.params.values()] if callspec is not None else []
        if "store" in fixtures and "postgresql" in params:
            item.add_marker("postgres")
        for fixture, mark in _MARK_BY_FIXTURE.items():
            if fixture in fixtures:
                item.add_marker(mark)
        path = str(getattr(item, "path", ""))
        if path.endswith(("test_compose_end_to_end.py",)):
            item.add_marker("docker")
        if path.endswith(("test_helm_charts.py", "test_kubernetes_emulated.py")):
            item.add_marker("helm")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The run fails if any process or container a test started is still alive: found by
    Launchbay's labels and the test folders (pytest's temporary folders and the demo's)."""
    from tests.leftovers import find_leftovers, remove

    stop_watch_threads()
    factory = getattr(session.config, "_tmp_path_factory", None)
    if factory is None or session.config.option.collectonly:
        return
    roots = [factory.getbasetemp(), ROOT / ".demo", UNPRIVILEGED_HOMES]
    found = find_leftovers(roots)
    if not found:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    lines = ["tests left these running (now removed):", *(f"  {item}" for item in found)]
    if reporter is not None:
        reporter.write_line("\n".join(lines), red=True)
    remove(found)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
