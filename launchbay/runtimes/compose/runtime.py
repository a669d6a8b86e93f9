"""The compose runtime itself: the `Runtime` interface, on the parts of this package.

It holds one of each: `Docker` (the SDK: state, events, logs, removal by label),
`Projects` (each space's folder, project name and the files Launchbay writes), `Ports`
(host ports kept per space), `ComposeCli` (`docker compose`), `TeamFiles` (the team's own
Compose file, read and checked) and `Status` (how a service stands).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from launchbay.domain.composefile import Port
from launchbay.domain.errors import LaunchbayError
from launchbay.domain.names import ServiceName, SpaceName
from launchbay.domain.plan import Observed
from launchbay.domain.spec import Address, ResolvedService
from launchbay.domain.template import Service, Template
from launchbay.runtimes.base import (
    Progress,
    Runtime,
    RuntimeKind,
    ServiceFailed,
    SpaceRef,
    closed_on,
    ignore_progress,
)
from launchbay.runtimes.compose.client import Docker
from launchbay.runtimes.compose.commands import ComposeCli, telling_lines
from launchbay.runtimes.compose.labels import LABEL_SERVICE, Owner
from launchbay.runtimes.compose.ports import Ports, container_port
from launchbay.runtimes.compose.projects import Projects
from launchbay.runtimes.compose.status import Status
from launchbay.runtimes.compose.teamfile import TeamFiles, check_binds


class ComposeRuntime(Runtime):
    name = "compose"

    def __init__(
        self,
        root: Path,
        *,
        project_prefix: str = "lb-",
        stop_timeout: int = 5,
        docker_timeout: float = 15.0,
        installation: str = "",
    ) -> None:
        self.root = root.resolve()
        self.prefix = project_prefix
        self.installation = installation
        self.stop_timeout = stop_timeout
        self.docker_timeout = docker_timeout
        owner = Owner(self.root, installation)
        self.docker = Docker(owner, timeout=docker_timeout)
        self.projects = Projects(owner, self.docker, prefix=project_prefix)
        self.ports = Ports(self.root)
        self.cli = ComposeCli(self.projects)
        self.files = TeamFiles(self.cli)
        self.status = Status(self.docker, self.ports, self.files)

    # -- the interface -------------------------------------------------------------------

    def check(self) -> str:
        version = self.docker.client().version().get("Version", "?")
        self.cli.command()  # found once: it does not change under a running server
        return f"Docker Engine {version} and Docker Compose {self.cli.version} answer"

    def addresses(
        self, space: SpaceRef, services: Mapping[ServiceName, Service]
    ) -> dict[ServiceName, Address]:
        folder = self.projects.folder(space.name)
        folder.mkdir(parents=True, exist_ok=True)
        if any(spec.compose_file for spec in services.values()):
            return self._project_addresses(space, services)
        container_ports = {name: container_port(name, spec) for name, spec in services.items()}
        self.ports.reserve(space.name, container_ports)
        return {name: Address(name, port or 0) for name, port in container_ports.items()}

    def endpoints(self, space: SpaceRef, service: ResolvedService) -> dict[str, str]:
        if service.spec.compose_file:
            return self._project_endpoints(space, service)
        self.addresses(space, {service.name: service.spec})
        port = self.ports.of(space.name, service.name)
        if port is None:
            return {}
        return {e.name: f"http://127.0.0.1:{port}{e.path}" for e in service.spec.endpoints}

    def start(self, space: SpaceRef, service: ResolvedService) -> None:
        if service.spec.compose is None:
            raise ServiceFailed(
                service.name, "has no compose section; it cannot run on the compose runtime"
            )
        self.docker.client()
        if service.spec.compose_file:
            # One service again (the reconciler restarting it): its dependencies run already.
            self._up(space, [service], ["--no-deps"])
            return
        with self.projects.lock(space.name):
            self.projects.write_service(space, service, ports=self.ports)
            result = self.cli.run(["up", "--detach", "--no-deps", service.name], space=space.name)
        if result.code != 0:
            why = self.docker.missing_image(service) + "docker compose up failed: "
            raise ServiceFailed(service.name, why + telling_lines(result.stderr))

    def probe(self, space: SpaceRef, service: ResolvedService) -> Observed:
        return self.status.probe(space, service, self.docker.container(space.name, service.name))

    def observe(
        self, space: SpaceRef, services: Sequence[ResolvedService]
    ) -> dict[ServiceName, Observed]:
        """Every service from one listing of the space's containers."""
        containers: dict[str, Any] = {}
        for container in self.docker.labelled("containers", space.name):
            containers.setdefault(container.labels.get(LABEL_SERVICE, ""), container)
        return {s.name: self.status.probe(space, s, containers.get(s.name)) for s in services}

    def check_template(self, template: Template) -> None:
        self.files.check(template)

    def starts_together(self, template: Template) -> bool:
        return template.compose is not None

    def start_all(
        self,
        space: SpaceRef,
        template: Template,
        services: Sequence[ResolvedService],
        params: Mapping[str, str],
        progress: Progress = ignore_progress,
    ) -> None:
        """`docker compose up --wait` of the team's own file with Launchbay's override:
        Compose orders the services, waits on their conditions and health, runs the jobs."""
        assert template.compose is not None
        self.docker.client()
        found = self.files.read(Path(template.compose.file))
        shared = template.compose.shared_binds
        check_binds(found, [s.name for s in services], shared)
        with self.projects.lock(space.name):
            folder = self.projects.folder(space.name)
            folder.mkdir(parents=True, exist_ok=True)
            first = self.projects.is_new(space.name)
            self.projects.keep_env(space.name, params, template.compose.profiles)
            own = self.projects.own_binds(space.name, found, [s.name for s in services], shared)
            self.projects.write_override(space, found, services, ports=self.ports, own_binds=own)
        # Jobs that completed stay completed (a wake does not run them again): then only the
        # others are named, and Compose is told not to start what they depend on.
        names = {s.name for s in services}
        options = ["--wait", "--wait-timeout", str(_wait_timeout(services))]
        if names != set(template.services):
            options.append("--no-deps")
        if first:  # a new space runs the team's source as it is now, not an older image
            options.append("--build")
        with self.status.watching(space, found, services, progress):
            self._up(space, services, options)

    def stop(self, space: SpaceRef, service: ServiceName) -> None:
        container = self.docker.container(space.name, service)
        if container is not None and container.status == "running":
            with self.docker.answering("stop its container", service=service):
                container.stop(timeout=self.stop_timeout)

    def sleep(self, space: SpaceRef, services: Sequence[ServiceName]) -> None:
        for container in self.docker.labelled("containers", space.name):
            if container.status == "running":
                service = container.labels.get(LABEL_SERVICE, "?")
                with self.docker.answering("stop its container", service=service):
                    container.stop(timeout=self.stop_timeout)

    def destroy(self, space: SpaceRef) -> None:
        """Remove the space's containers, network and volumes (found by label), and nothing else."""
        with self.projects.lock(space.name):
            self.docker.remove_space(space.name)
            self.projects.remove(space.name)

    def spaces(self) -> set[SpaceName]:
        found = (
            {SpaceName(p.name) for p in self.root.iterdir() if p.is_dir()}
            if self.root.exists()
            else set()
        )
        return found | self.docker.spaces()

    def logs(
        self,
        space: SpaceRef,
        service: ServiceName,
        *,
        tail: int,
        follow: bool,
        stop: threading.Event | None = None,
    ) -> Iterator[str]:
        container = self.docker.container(space.name, service)
        if container is None:
            return
        with self.docker.answering("read its log", service=service):
            stream = container.logs(stream=True, follow=follow, tail=tail)
        pending = b""
        try:
            with closed_on(stop, stream), self.docker.answering("read its log", service=service):
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
        self.docker.close()

    # -- bringing a project up -----------------------------------------------------------

    def _up(self, space: SpaceRef, services: Sequence[ResolvedService], options: list[str]) -> None:
        names = [s.name for s in services]
        result = self.cli.run(
            ["up", "--detach", *options, *names], space=space.name, project=services[0]
        )
        if result.code != 0:
            raise self._why_up_failed(space, services, result.stderr)

    def _why_up_failed(
        self, space: SpaceRef, services: Sequence[ResolvedService], stderr: str
    ) -> ServiceFailed:
        """The service that failed and the line of Compose's output that says why."""
        said = telling_lines(stderr)
        project = self.projects.name(space.name)
        for service in services:
            if re.search(rf"\b{re.escape(project)}[-_]{re.escape(service.name)}[-_]\d+\b", said):
                return self._failed(space, service.name, said)
        for service in services:
            seen = self.probe(space, service)
            if not seen.running and not seen.completed and seen.detail != "no container":
                return self._failed(space, service.name, f"{seen.detail}; compose said: {said}")
        return ServiceFailed(services[0].name if len(services) == 1 else "compose", said)

    def _failed(self, space: SpaceRef, service: str, said: str) -> ServiceFailed:
        """The service's failure with the lines of its own output that say why."""
        try:
            output = "".join(self.logs(space, ServiceName(service), tail=50, follow=False))
        except LaunchbayError:
            output = ""
        telling = telling_lines(output, count=3) if output.strip() else ""
        return ServiceFailed(service, f"{telling}\n(compose: {said})" if telling else said)

    # -- a project of the team's own file ------------------------------------------------

    def _project_addresses(
        self, space: SpaceRef, services: Mapping[ServiceName, Service]
    ) -> dict[ServiceName, Address]:
        """Inside the project a service is reached by its Compose name, on its first port."""
        addresses = {}
        for name, spec in services.items():
            found = self.files.read(Path(spec.compose_file or ""))
            self.ports.of_project(space.name, found, [name])
            addresses[name] = Address(name, found.services[name].first_port)
        return addresses

    def _project_endpoints(self, space: SpaceRef, service: ResolvedService) -> dict[str, str]:
        """Every published port, named by the template's endpoint for it, else by its port."""
        found = self.files.read(Path(service.spec.compose_file or ""))
        ports = found.services[service.name].ports
        hosts = self.ports.of_project(space.name, found, [service.name])[service.name]
        if found.services[service.name].replicas > 1:
            hosts = self.status.published(space, service.name)  # Docker chose them: read them
        named: dict[str, str] = {}
        unnamed = list(ports)
        for endpoint in service.spec.endpoints:
            wanted = endpoint.port or (ports[0].target if ports else None)
            port = next((p for p in ports if p.target == wanted), None)
            if port is None:
                continue
            if port in unnamed:
                unnamed.remove(port)
            if port.key in hosts:
                named[endpoint.name] = _url(port, hosts[port.key], endpoint.path)
        for port in unnamed:
            if port.key in hosts:
                name = str(port.target) if port.protocol == "tcp" else port.key
                named[name] = _url(port, hosts[port.key], "/")
        return named


def _wait_timeout(services: Sequence[ResolvedService]) -> int:
    """Seconds `up --wait` may take: the longest health timeout a template gives, at least 5 min."""
    longest = max(
        (s.spec.health.timeout.total_seconds() for s in services if s.spec.health), default=0
    )
    return int(max(300, longest))


def _url(port: Port, host_port: int, path: str) -> str:
    if port.protocol == "udp":
        return f"udp://127.0.0.1:{host_port}"
    return f"http://127.0.0.1:{host_port}{path}"


KIND = RuntimeKind(
    name=ComposeRuntime.name,
    section="compose",
    summary="Local Spaces: Docker Compose on the server's Docker Engine",
    make=lambda context: ComposeRuntime(
        context.folder("compose"), installation=context.installation
    ),
)
