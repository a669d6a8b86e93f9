"""What Launchbay writes for Compose: each space's folder under the runtime's root, its
project name, and its Compose files.

A template of per-service `compose:` sections becomes the space's own `compose.yaml`; a
template that names the team's own file gets `launchbay.override.yaml`, merged by Compose
over the team's file, with only what Launchbay adds. Either way every object carries
Launchbay's labels and publishes its ports on loopback only.
"""

from __future__ import annotations

import copy
import os
import shutil
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from launchbay.domain.composefile import ComposeFile, bind_source
from launchbay.domain.spec import ResolvedService
from launchbay.runtimes import goyaml
from launchbay.runtimes.base import RuntimeUnavailable, SpaceRef
from launchbay.runtimes.compose.client import Docker
from launchbay.runtimes.compose.labels import COMPOSE_PROJECT, Owner, labels_of
from launchbay.runtimes.compose.ports import Ports, port_number
from launchbay.runtimes.statefiles import read_json, write_json

OVERRIDE_FILE = "launchbay.override.yaml"


class Projects:
    def __init__(self, owner: Owner, docker: Docker, *, prefix: str) -> None:
        self.owner = owner
        self.docker = docker
        self.prefix = prefix
        self._names: dict[str, str] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def folder(self, space: str) -> Path:
        return self.owner.root / space

    def name(self, space: str) -> str:
        """`lb-<installation>-<space>`: two servers on one Docker Engine never share a
        project. A space whose containers run under another name (made before names carried
        the installation) keeps that one: it is adopted, not made again."""
        with self._lock:
            known = self._names.get(space)
        if known is None:
            installation = self.owner.installation
            running = self.docker.labelled("containers", space, sparse=True)
            known = (
                next(
                    (str(x) for c in running if (x := labels_of(c).get(COMPOSE_PROJECT))),
                    f"{self.prefix}{installation}-{space}" if installation else "",
                )
                or f"{self.prefix}{space}"
            )
            with self._lock:
                self._names[space] = known
        return known

    def lock(self, space: str) -> threading.Lock:
        """Held while the space's files are written or removed."""
        with self._lock:
            return self._locks.setdefault(space, threading.Lock())

    def remove(self, space: str) -> None:
        shutil.rmtree(self.folder(space), ignore_errors=True)
        with self._lock:
            self._names.pop(space, None)

    def keep_env(self, space: str, params: Mapping[str, str], profiles: Sequence[str]) -> None:
        """The space's parameters (what fills the team's `${VAR}`) and profiles, for every
        later `docker compose` of the space."""
        write_json(self.folder(space) / "env.json", {"params": dict(params), "profiles": profiles})

    def kept_env(self, space: str) -> dict[str, Any]:
        return read_json(self.folder(space) / "env.json") or {}

    def write_service(self, space: SpaceRef, service: ResolvedService, *, ports: Ports) -> None:
        """The service into the space's own `compose.yaml` (a template without a file)."""
        path = self.folder(space.name) / "compose.yaml"
        document: dict[str, Any] = {}
        if path.exists():
            document = yaml.safe_load(path.read_text()) or {}
        document.setdefault("name", self.name(space.name))
        document.setdefault("services", {})[service.name] = self._service_document(
            space, service, ports=ports
        )
        document["networks"] = {"default": {"labels": self.owner.labels(space.name)}}
        volumes = document.setdefault("volumes", {})
        for volume in _named_volumes(document["services"][service.name]):
            volumes[volume] = {"labels": self.owner.labels(space.name)}
        if not volumes:
            del document["volumes"]
        path.write_text(goyaml.dump(document))

    def _service_document(
        self, space: SpaceRef, service: ResolvedService, *, ports: Ports
    ) -> dict[str, Any]:
        """The template's compose section as Compose accepts it, with Launchbay's parts added:
        labels, the published port on 127.0.0.1, and no container_name or depends_on (two
        spaces must not clash, and the engine orders starts itself)."""
        labels = self.owner.labels
        doc = copy.deepcopy(service.spec.compose or {})
        doc.pop("container_name", None)
        doc.pop("depends_on", None)
        doc["labels"] = {**_mapping(doc.get("labels")), **labels(space.name, service.name)}
        doc["environment"] = {
            **_mapping(doc.get("environment")),
            "LAUNCHBAY_VERSION": service.version,
            "LAUNCHBAY_SPACE": space.name,
        }
        if doc.get("build") is not None:  # what it builds is the space's, removed with it
            build = doc["build"]
            build = {"context": build} if isinstance(build, str) else dict(build)
            build["labels"] = {**_mapping(build.get("labels")), **labels(space.name)}
            doc["build"] = build
        doc.setdefault("init", True)
        published = list(doc.get("ports") or [])
        if published:
            host_port = ports.of(space.name, service.name)
            first = port_number(published[0], service=service.name)
            published[0] = f"127.0.0.1:{host_port}:{first}"
            published[1:] = [
                f"127.0.0.1::{port_number(p, service=service.name)}" for p in published[1:]
            ]
            doc["ports"] = published
        return doc

    def is_new(self, space: str) -> bool:
        """No override written yet: the space has never been started from the team's file."""
        return not (self.folder(space) / OVERRIDE_FILE).exists()

    def write_override(
        self,
        space: SpaceRef,
        found: ComposeFile,
        services: Sequence[ResolvedService],
        *,
        ports: Ports,
        own_binds: Mapping[str, list[dict[str, Any]]],
    ) -> None:
        """Only what Launchbay adds, merged by Compose over the team's file: labels, ports on
        loopback, its environment, the space's own copies of binds (merged by target), the
        template's overlay and `--set` overrides."""
        hosts = ports.of_project(space.name, found, [s.name for s in services])
        labels = self.owner.labels(space.name)
        documents: dict[str, Any] = {}
        for service in services:
            spec = found.services[service.name]
            overlay = copy.deepcopy(service.spec.compose or {})
            doc: dict[str, Any] = {**overlay, "container_name": _Reset()}
            doc["labels"] = {
                **_mapping(overlay.get("labels")),
                **self.owner.labels(space.name, service.name),
            }
            doc["environment"] = {
                **_mapping(overlay.get("environment")),
                "LAUNCHBAY_SPACE": space.name,
            }
            if service.name in own_binds:
                doc["volumes"] = [*(overlay.get("volumes") or []), *own_binds[service.name]]
            if spec.built:
                doc["build"] = {"labels": self.owner.labels(space.name, service.name)}
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
        (self.folder(space.name) / OVERRIDE_FILE).write_text(
            goyaml.dump(override, dumper=_OverrideDumper)
        )

    def own_binds(
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
                copy = self.folder(space) / "binds" / relative
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
