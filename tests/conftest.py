from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from launchbay.store.db import Store, sqlite_url
from tests.support import EXAMPLES, Postgres, ServerProcess


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


@pytest.fixture(scope="session")
def kube_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, object]]:
    """An emulated Kubernetes API (kmock), a test kubelet playing the cluster's part, and the
    real helm binary for rendering charts."""
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
        extra_args=["--sweep-interval", "0.5", "--reconcile-interval", "1", "--orphan-grace", "2"],
    )
    s.home.mkdir()
    s.start()
    yield s
    s.stop()
    _kill_leftovers(s.data_dir / "runtime" / "process")


def _kill_leftovers(root: Path) -> None:
    """A failed test must not leave processes behind for the next one."""
    from tests.support import labelled_processes

    for pid in labelled_processes(root):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, 9)
