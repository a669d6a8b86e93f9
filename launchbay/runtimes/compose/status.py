"""Observing a space's containers: how a service stands (Docker's account, then the
template's own health check), where Docker published its ports, and, while Compose
brings a space up, what Docker's events say of each service."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from launchbay.domain.composefile import ComposeFile
from launchbay.domain.names import ServiceName
from launchbay.domain.plan import Observed
from launchbay.domain.spec import ResolvedService
from launchbay.runtimes import probes
from launchbay.runtimes.base import Progress, ServiceFailed, SpaceRef
from launchbay.runtimes.compose.client import Docker
from launchbay.runtimes.compose.labels import LABEL_SERVICE
from launchbay.runtimes.compose.ports import Ports
from launchbay.runtimes.compose.teamfile import TeamFiles

log = logging.getLogger(__name__)


class Status:
    def __init__(self, docker: Docker, ports: Ports, files: TeamFiles) -> None:
        self.docker = docker
        self.ports = ports
        self.files = files

    def probe(self, space: SpaceRef, service: ResolvedService, container: Any) -> Observed:
        """Docker's account first (exited, restarting, its own healthcheck), then the
        template's `health:` as an extra gate."""
        if container is None:
            return Observed(running=False, healthy=None, detail="no container")
        state = container.attrs.get("State", {})
        restarts = container.attrs.get("RestartCount", 0)
        suffix = f" (restarted {restarts}x)" if restarts else ""
        if service.spec.one_shot and state.get("Status") == "exited" and state.get("ExitCode") == 0:
            return Observed(running=False, healthy=None, detail="completed", completed=True)
        if state.get("Status") != "running" or state.get("Restarting"):
            error = f": {state['Error']}" if state.get("Error") else ""
            return Observed(
                running=False,
                healthy=None,
                detail=f"{state.get('Status', '?')}, exited with code {state.get('ExitCode')}"
                f"{error}{suffix}",
            )
        docker_health = (state.get("Health") or {}).get("Status")
        if docker_health and docker_health != "healthy":
            return Observed(
                running=True, healthy=False, detail=f"docker health: {docker_health}{suffix}"
            )
        health = service.spec.health
        if health is None:
            if docker_health:
                return Observed(
                    running=True, healthy=True, detail=f"docker health: healthy{suffix}"
                )
            return Observed(running=True, healthy=None, detail=f"running{suffix}")
        if health.command is not None:
            try:
                with self.docker.answering("run its health command", service=service.name):
                    code, output = container.exec_run(health.command)
            except ServiceFailed as e:  # one container's trouble: it is not healthy, now
                return Observed(running=True, healthy=False, detail=str(e).split(": ", 1)[1])
            last = output.decode(errors="replace").strip().splitlines()[-1:] if output else []
            return Observed(
                running=True,
                healthy=code == 0,
                detail=f"exit {code}" + (f": {last[0]}" if last else ""),
            )
        host, port = self._health_address(space, service, container)
        if port is None:
            return Observed(running=True, healthy=False, detail="no port to check health on")
        passed, detail = probes.network(health, host=host, port=port)
        return Observed(running=True, healthy=passed, detail=detail + suffix)

    def _health_address(
        self, space: SpaceRef, service: ResolvedService, container: Any
    ) -> tuple[str, int | None]:
        """Where a template's tcp/http health check knocks: the port it names (else the
        first) on loopback where it is published, else on the container's own address."""
        if not service.spec.compose_file:
            return "127.0.0.1", self.ports.of(space.name, service.name)
        compose_file = self.files.read(Path(service.spec.compose_file))
        found = compose_file.services[service.name]
        wanted = next((e.port for e in service.spec.endpoints if e.port), found.first_port)
        published = next((p for p in found.ports if p.target == wanted), None)
        if published is not None and found.replicas == 1:
            hosts = self.ports.of_project(space.name, compose_file, [service.name])
            return "127.0.0.1", hosts[service.name][published.key]
        networks = container.attrs.get("NetworkSettings", {}).get("Networks") or {}
        address = next((n.get("IPAddress") for n in networks.values() if n.get("IPAddress")), "")
        return (address, wanted or None) if address else ("127.0.0.1", None)

    def published(self, space: SpaceRef, service: str) -> dict[str, int]:
        """The loopback ports Docker published for the service's first container."""
        container = self.docker.container(space.name, service)
        published = (
            (container.attrs.get("NetworkSettings", {}).get("Ports") or {}) if container else {}
        )
        return {
            key: int(bindings[0]["HostPort"]) for key, bindings in published.items() if bindings
        }

    @contextlib.contextmanager
    def watching(
        self,
        space: SpaceRef,
        found: ComposeFile,
        services: Sequence[ResolvedService],
        progress: Progress,
    ) -> Iterator[None]:
        """Tell `progress` of each service as Docker reports it up (its events: started, its
        healthcheck passed, a job exited 0), without polling Docker while Compose works."""
        stream = self.docker.events(space.name)
        if stream is None:
            yield  # progress is a nicety: the engine reads every state at the end anyway
            return
        one_shot = {str(s.name) for s in services if s.spec.one_shot}
        checked = {name for name, s in found.services.items() if s.healthcheck}

        def read() -> None:
            try:
                for event in stream:
                    seen = _seen_in(event, one_shot=one_shot, checked=checked)
                    if seen is not None:
                        progress(*seen)
            except Exception:  # a thread's boundary; closing the stream ends it here too
                log.debug("compose events for %s ended", space.name, exc_info=True)

        thread = threading.Thread(target=read, name="launchbay-compose-events", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stream.close()
            thread.join(timeout=5)


def _seen_in(
    event: Mapping[str, Any], *, one_shot: set[str], checked: set[str]
) -> tuple[ServiceName, Observed] | None:
    """What a Docker container event says of a service coming up, if anything."""
    attributes = (event.get("Actor") or {}).get("Attributes") or {}
    name = attributes.get(LABEL_SERVICE)
    action = str(event.get("Action") or event.get("status") or "")
    if not name:
        return None
    seen = None
    if action == "health_status: healthy":
        seen = Observed(running=True, healthy=True, detail="docker health: healthy")
    elif action == "start" and name not in checked and name not in one_shot:
        seen = Observed(running=True, healthy=None, detail="running")
    elif action == "die" and name in one_shot and attributes.get("exitCode") == "0":
        seen = Observed(running=False, healthy=None, detail="completed", completed=True)
    return (ServiceName(name), seen) if seen is not None else None
