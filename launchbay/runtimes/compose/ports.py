"""Host ports: a free port on 127.0.0.1 for each port a space publishes, kept in the space's
`ports.json` for its life (so its URLs survive a sleep), so that two spaces of one template
run side by side."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from launchbay.domain.composefile import ComposeFile
from launchbay.domain.names import ServiceName
from launchbay.domain.template import Service
from launchbay.runtimes import hostports
from launchbay.runtimes.base import ServiceFailed
from launchbay.runtimes.statefiles import read_json, write_json

LOOPBACK = "127.0.0.1"


class Ports:
    def __init__(self, root: Path) -> None:
        self._root = root
        self._lock = threading.Lock()

    def _folder(self, space: str) -> Path:
        return self._root / space

    def reserve(self, space: str, wanted: Mapping[ServiceName, int | None]) -> None:
        """A host port for each service that publishes one (per-service sections)."""
        path = self._folder(space) / "ports.json"
        with self._lock:
            ports: dict[str, int] = read_json(path) or {}
            taken = hostports.held(self._root)
            for name, port in wanted.items():
                if name not in ports and port is not None:
                    ports[name] = hostports.pick(LOOPBACK, taken)
                    taken.add(ports[name])
            write_json(path, ports)

    def of(self, space: str, service: str) -> int | None:
        """The host port of a service of per-service sections, if it has one."""
        ports = read_json(self._folder(space) / "ports.json") or {}
        value = ports.get(service)
        return int(value) if value is not None else None

    def of_project(
        self, space: str, found: ComposeFile, names: Sequence[str]
    ) -> dict[str, dict[str, int]]:
        """A free loopback port for each port the team's file publishes, by service and
        port key, allocated at first need."""
        path = self._folder(space) / "ports.json"
        with self._lock:
            kept: dict[str, Any] = read_json(path) or {}
            taken = hostports.held(self._root)
            changed = False
            for name in names:
                ports = kept.get(name)
                if not isinstance(ports, dict):
                    ports = kept[name] = {}
                for port in found.services[name].ports:
                    if port.key not in ports:
                        ports[port.key] = hostports.pick(LOOPBACK, taken)
                        taken.add(ports[port.key])
                        changed = True
            if changed or not path.exists():
                write_json(path, kept)
        return {name: kept[name] for name in names}


def container_port(name: str, spec: Service) -> int | None:
    ports = (spec.compose or {}).get("ports") or []
    if not isinstance(ports, list):
        raise ServiceFailed(name, "compose ports must be a list")
    return port_number(ports[0], service=name) if ports else None


def port_number(entry: Any, *, service: str) -> int:
    """The container port of a Compose `ports` entry: 8080, "8080", "8080/tcp", "1234:8080"."""
    try:
        if isinstance(entry, dict):
            return int(entry["target"])
        return int(str(entry).split("/")[0].rsplit(":", 1)[-1])
    except (KeyError, ValueError, TypeError) as e:
        raise ServiceFailed(
            service, f"compose ports entry {entry!r} names no container port"
        ) from e
