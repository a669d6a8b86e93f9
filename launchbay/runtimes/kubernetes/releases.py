"""A Helm release per service: installed and uninstalled through an Installer (the helm
CLI on a real cluster), refused before it installs anything that cannot run in a space,
and its objects read from its manifest (once, then kept until it changes)."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any, Protocol

from launchbay.domain.template import HelmSection
from launchbay.runtimes.base import ServiceFailed
from launchbay.runtimes.kubernetes.release import ObjectRef, objects_of, placement_problems


class Installer(Protocol):
    """What puts a service's release into a namespace: helm on a real cluster."""

    def install(
        self,
        *,
        release: str,
        namespace: str,
        section: HelmSection,
        values: Mapping[str, Any],
        service: str,
    ) -> None: ...

    def uninstall(self, *, release: str, namespace: str, service: str) -> None: ...

    def releases(self, namespace: str) -> list[str]: ...

    def manifest(self, *, release: str, namespace: str) -> list[dict[str, Any]]:
        """What the release installed, as its manifest says (`helm get manifest`)."""
        ...

    def template(
        self,
        *,
        release: str,
        namespace: str,
        section: HelmSection,
        values: Mapping[str, Any],
        service: str,
    ) -> list[dict[str, Any]]:
        """What the release would install, hooks included (`helm template`)."""
        ...


class Releases:
    def __init__(self, installer: Installer) -> None:
        self.installer = installer
        # Each release's objects, by (namespace, release), as its manifest says.
        self._manifests: dict[tuple[str, str], list[ObjectRef]] = {}
        self._lock = threading.Lock()

    def install(self, *, release: str, namespace: str, section: HelmSection, service: str) -> None:
        """The chart rendered first and refused if any of it cannot run in a space (cluster-
        scoped, or in another namespace); then installed."""
        rendered = objects_of(
            self.installer.template(
                release=release,
                namespace=namespace,
                section=section,
                values=section.values,
                service=service,
            )
        )
        problems = placement_problems(rendered, namespace)
        if problems:
            raise ServiceFailed(
                service, f"chart {section.chart} cannot run in a space: {'; '.join(problems)}"
            )
        self.installer.install(
            release=release,
            namespace=namespace,
            section=section,
            values=section.values,
            service=service,
        )
        self.forget(namespace, release)  # read the new manifest at the next look

    def uninstall_all(self, namespace: str) -> None:
        for release in self.installer.releases(namespace):
            self.installer.uninstall(release=release, namespace=namespace, service=release)
        self.forget(namespace)

    def objects(self, namespace: str, release: str) -> list[ObjectRef]:
        """The release's objects, from its manifest (read once, then kept until it changes)."""
        key = (namespace, release)
        with self._lock:
            known = self._manifests.get(key)
        if known is None:
            known = [
                r
                for r in objects_of(self.installer.manifest(release=release, namespace=namespace))
                if not r.hook
            ]
            if known:
                with self._lock:
                    self._manifests[key] = known
        return known

    def forget(self, namespace: str, release: str | None = None) -> None:
        with self._lock:
            for key in [k for k in self._manifests if k[0] == namespace]:
                if release is None or key[1] == release:
                    del self._manifests[key]
