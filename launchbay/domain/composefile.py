"""A Compose file as Launchbay reads it: which services, what they wait for, what they publish.

Launchbay never rewrites a team's Compose file; Compose runs it. This reads only what
Launchbay must know around it: the services (for status, events and endpoints), their
`depends_on` conditions (one-shot jobs), profiles, published ports (bound to loopback by an
override file) and bind mounts (checked before anything is created). Everything else,
`x-` fields, anchors, `$$` escapes and `${VAR:-default}` included, is Compose's business.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from launchbay.domain.yamlsource import SourceMap, YamlError

CONDITIONS = ("service_started", "service_healthy", "service_completed_successfully")


@dataclass(frozen=True)
class Port:
    """One published port: the container port and its protocol (`tcp` or `udp`)."""

    target: int
    protocol: str = "tcp"

    @property
    def key(self) -> str:
        return f"{self.target}/{self.protocol}"


@dataclass(frozen=True)
class Bind:
    """A bind mount: its source as written, where it is mounted, and whether read-only."""

    source: str
    target: str
    read_only: bool

    @property
    def relative(self) -> bool:
        """A folder of the team's own tree (`./data`), not a machine's path (`/x`, `~/x`)."""
        return not self.source.startswith(("/", "~"))

    def own_copy(self, shared: Sequence[str]) -> bool:
        """Whether each space gets its own copy: writable, in the team's tree, and not one
        the template says every space shares (`compose.shared_binds`)."""
        return self.relative and not self.read_only and self.source not in shared

    def kind(self, shared: Sequence[str]) -> str:
        """How spaces see it, in words (`bay template show`)."""
        if self.own_copy(shared):
            return "each space's own copy"
        return "read-only, shared" if self.read_only else "shared by every space"


@dataclass(frozen=True)
class ComposeService:
    name: str
    depends_on: Mapping[str, str]  # dependency -> condition
    profiles: tuple[str, ...]
    ports: tuple[Port, ...]
    expose: tuple[int, ...]
    binds: tuple[Bind, ...]
    built: bool
    replicas: int
    healthcheck: bool  # its own, in the file (an image's HEALTHCHECK is not seen here)

    @property
    def first_port(self) -> int:
        """The first container port, published or only exposed; 0 if none."""
        if self.ports:
            return self.ports[0].target
        return self.expose[0] if self.expose else 0


@dataclass(frozen=True)
class ComposeFile:
    file: str
    services: Mapping[str, ComposeService]
    networks: tuple[str, ...]  # declared and not external
    volumes: tuple[str, ...]  # declared and not external

    def one_shot(self) -> set[str]:
        """Services something waits on to *complete*: jobs, not servers."""
        return {
            dep
            for service in self.services.values()
            for dep, condition in service.depends_on.items()
            if condition == "service_completed_successfully"
        }

    def profiles(self) -> set[str]:
        return {p for s in self.services.values() for p in s.profiles}


def read_compose_file(document: Any, source: SourceMap) -> ComposeFile:
    """What Launchbay needs of a loaded Compose file; every problem at once, with its line."""
    problems: list[str] = []

    def problem(path: tuple[str | int, ...], message: str) -> None:
        where = ".".join(str(p) for p in path) or "(top)"
        problems.append(f"{source.file}:{source.line_of(path)}: {where}: {message}")

    if not isinstance(document, dict) or not isinstance(document.get("services"), dict):
        raise YamlError([f"{source.file}:1: a Compose file has a `services` mapping"])
    services = {}
    for name, raw in document["services"].items():
        if not isinstance(raw, dict):
            problem(("services", name), "a service is a mapping")
            continue
        services[str(name)] = _service(
            str(name), raw, lambda p, m, n=name: problem(("services", n, *p), m)
        )
    for name, service in services.items():
        for dep in service.depends_on:
            if dep not in services:
                problem(("services", name, "depends_on"), f"unknown service {dep!r}")
    if problems:
        raise YamlError(problems)
    return ComposeFile(
        file=source.file,
        services=services,
        networks=_declared(document.get("networks")),
        volumes=_declared(document.get("volumes")),
    )


def _service(name: str, raw: Mapping[str, Any], problem: Any) -> ComposeService:
    depends = raw.get("depends_on") or {}
    if isinstance(depends, list):
        depends = {str(d): "service_started" for d in depends}
    elif isinstance(depends, dict):
        depends = {
            str(d): str((c or {}).get("condition", "service_started"))
            if isinstance(c, dict)
            else "service_started"
            for d, c in depends.items()
        }
    else:
        problem(("depends_on",), "write a list of services or a mapping of conditions")
        depends = {}
    for dep, condition in depends.items():
        if condition not in CONDITIONS:
            problem(("depends_on", dep), f"unknown condition {condition!r}")
    ports = []
    for index, entry in enumerate(raw.get("ports") or []):
        try:
            ports.extend(_ports(entry))
        except ValueError as e:
            problem(("ports", index), str(e))
    expose = []
    for index, entry in enumerate(raw.get("expose") or []):
        try:
            expose.append(int(str(entry).split("/")[0].split("-")[0]))
        except ValueError:
            problem(("expose", index), f"{entry!r} is not a port")
    deploy = raw.get("deploy") or {}
    replicas = raw.get("scale", deploy.get("replicas", 1) if isinstance(deploy, dict) else 1)
    return ComposeService(
        name=name,
        depends_on=depends,
        profiles=tuple(str(p) for p in raw.get("profiles") or []),
        ports=tuple(ports),
        expose=tuple(expose),
        binds=tuple(_binds(raw.get("volumes") or [])),
        built=raw.get("build") is not None,
        healthcheck=isinstance(raw.get("healthcheck"), dict)
        and not raw["healthcheck"].get("disable", False),
        replicas=int(replicas) if str(replicas).isdigit() else 1,
    )


def _ports(entry: Any) -> list[Port]:
    """The container ports of one `ports` entry: 80, "8080:80", "127.0.0.1::53/udp",
    "9000-9001:9000-9001", or the long form {target, protocol}."""
    if isinstance(entry, dict):
        if "target" not in entry:
            raise ValueError("a port mapping needs a target")
        return [Port(int(entry["target"]), str(entry.get("protocol", "tcp")))]
    text, _, protocol = str(entry).partition("/")
    container = text.rsplit(":", 1)[-1]
    first, _, last = container.partition("-")
    try:
        low, high = int(first), int(last or first)
    except ValueError:
        raise ValueError(f"{entry!r} names no container port") from None
    if high < low or high - low > 100:
        raise ValueError(f"{entry!r}: a port range is low-high, at most 100 ports")
    return [Port(p, protocol or "tcp") for p in range(low, high + 1)]


def _binds(volumes: Sequence[Any]) -> list[Bind]:
    """Bind mounts: paths (`./x:/y[:ro]`, `/x:/y`, `~/x:/y`) and long-form `type: bind`."""
    found = []
    for entry in volumes:
        if isinstance(entry, dict):
            if entry.get("type") == "bind" and entry.get("source"):
                found.append(
                    Bind(
                        str(entry["source"]),
                        str(entry.get("target", "")),
                        bool(entry.get("read_only")),
                    )
                )
            continue
        source, colon, rest = str(entry).partition(":")
        if colon and source.startswith(("/", ".", "~")):
            target, _, mode = rest.partition(":")
            found.append(Bind(source, target, "ro" in mode.split(",")))
    return found


def _declared(section: Any) -> tuple[str, ...]:
    if not isinstance(section, dict):
        return ()
    return tuple(
        str(name)
        for name, spec in section.items()
        if not (isinstance(spec, dict) and spec.get("external"))
    )


def bind_source(source: str, folder: str) -> str:
    """Where a bind source is, as Compose reads it: relative to the Compose file's folder."""
    path = PurePosixPath(source)
    return str(
        path if path.is_absolute() or source.startswith("~") else PurePosixPath(folder) / path
    )
