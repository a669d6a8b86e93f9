"""The kubernetes runtime: a namespace per space, a Helm release per service.

Everything it reads and writes in the cluster goes through the official client (rate-
limited, counted); releases go through an Installer (the helm CLI on a real cluster).
Status comes from watch-based caches, so refreshing many spaces costs no API call per
space. It acts only on namespaces that carry Launchbay's managed-by label and the space's
label, never on default, kube-* or its own namespace, and deletes a namespace with a UID
precondition so that one re-created under the same name is never removed by mistake.

`KubernetesRuntime` is the `Runtime` interface on its parts: `Namespaces` (with their
`Policy`), `Releases`, `Workloads` and the `Watches` they read; `status.observed` judges.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from kubernetes import client

from launchbay.domain.errors import NotFound
from launchbay.domain.names import ServiceName, SpaceName
from launchbay.domain.plan import Observed
from launchbay.domain.spec import Address, ResolvedService
from launchbay.domain.template import Service
from launchbay.runtimes.base import (
    Runtime,
    RuntimeEvent,
    ServiceFailed,
    SpaceRef,
    closed_on,
)
from launchbay.runtimes.kubernetes.cache import Watches
from launchbay.runtimes.kubernetes.client import LimitedApiClient
from launchbay.runtimes.kubernetes.errors import answering
from launchbay.runtimes.kubernetes.namespaces import Namespaces
from launchbay.runtimes.kubernetes.naming import release_for, service_address
from launchbay.runtimes.kubernetes.policy import Policy
from launchbay.runtimes.kubernetes.releases import Installer, Releases
from launchbay.runtimes.kubernetes.settings import ClusterSettings
from launchbay.runtimes.kubernetes.status import observed
from launchbay.runtimes.kubernetes.workloads import Workloads

__all__ = ["ClusterSettings", "Installer", "KubernetesRuntime"]


class KubernetesRuntime(Runtime):
    name = "kubernetes"
    # The cluster is reached over the network: any replica may act on its spaces.
    machine_local = False

    def __init__(
        self, api: LimitedApiClient, installer: Installer, settings: ClusterSettings
    ) -> None:
        self.api = api
        self.installer = installer
        self.settings = settings
        self.core = client.CoreV1Api(api)
        self.apps = client.AppsV1Api(api)
        self.net = client.NetworkingV1Api(api)
        policy = Policy(api, self.core, self.net, settings)
        self.namespaces = Namespaces(self.core, settings, policy)
        self.releases = Releases(installer)
        self.watches = Watches(
            api, core=self.core, apps=self.apps, prefix=settings.namespace_prefix
        )
        self.workloads = Workloads(self.core, self.apps, self.watches, self.releases)

    # -- the interface -------------------------------------------------------------------

    def check(self) -> str:
        with answering(verb="list", resource="namespaces"):
            self.core.list_namespace(limit=1)
        return f"Kubernetes API at {self.api.configuration.host} answers"

    def warnings(self, space: SpaceRef) -> list[RuntimeEvent]:
        """The namespace's Warning events (from a watch, so no API call per space)."""
        found = []
        events = self.watches.get("events")
        for event in events.in_namespace(self.namespaces.name(space.name)):
            if event.type != "Warning":
                continue
            involved = event.involved_object
            what = f"{involved.kind}/{involved.name}: " if involved and involved.name else ""
            at = event.last_timestamp or event.event_time or event.metadata.creation_timestamp
            found.append(
                RuntimeEvent(
                    id=event.metadata.uid or f"{event.metadata.namespace}/{event.metadata.name}",
                    at=at or datetime.now(UTC),
                    message=f"{event.reason or 'Warning'}: {what}{event.message or ''}".strip(),
                )
            )
        return found

    def check_space(self, name: SpaceName) -> None:
        self.namespaces.name(name)

    def addresses(
        self, space: SpaceRef, services: Mapping[ServiceName, Service]
    ) -> dict[ServiceName, Address]:
        namespace = self.namespaces.name(space.name)
        return {
            name: service_address(
                namespace,
                name,
                service_name=spec.helm.service if spec.helm else None,
                port=spec.helm.port if spec.helm else None,
            )
            for name, spec in services.items()
        }

    def endpoints(self, space: SpaceRef, service: ResolvedService) -> dict[str, str]:
        """The hosts of the Ingresses the release made, or a port-forward hint where it
        made none: nothing is advertised that the chart does not create."""
        section = service.spec.helm
        if section is None or not service.spec.endpoints:
            return {}
        namespace = self.namespaces.name(space.name)
        release = release_for(service.name)
        hosts = self._ingress_hosts(namespace, release)
        if hosts:
            return {e.name: f"{hosts[0]}{e.path}" for e in service.spec.endpoints}
        services = [
            r.name for r in self.releases.objects(namespace, release) if r.kind == "Service"
        ]
        target = section.service or (services[0] if services else release)
        port = section.port or 80
        hint = f"kubectl -n {namespace} port-forward svc/{target} {port}:{port}"
        return {e.name: hint for e in service.spec.endpoints}

    def domain(self, space: SpaceRef) -> str:
        """`${space.domain}`: where a space's Ingress hosts go, under the base domain."""
        base = self.settings.base_domain
        return f"{space.name}.{base}" if base else f"{space.name}.localhost"

    def start(self, space: SpaceRef, service: ResolvedService) -> None:
        section = service.spec.helm
        if section is None:
            raise ServiceFailed(
                service.name, "has no helm section; it cannot run on the kubernetes runtime"
            )
        if not isinstance(section.values, Mapping):
            raise ServiceFailed(service.name, "helm values must be a mapping")
        namespace = self.namespaces.ensure(space)
        release = release_for(service.name)
        if self.workloads.wake(namespace, release):
            return
        self.releases.install(
            release=release, namespace=namespace, section=section, service=service.name
        )

    def probe(self, space: SpaceRef, service: ResolvedService) -> Observed:
        """The release's own objects, as its manifest names them, judged by Kubernetes'
        status conventions (see status.py)."""
        namespace = self.namespaces.name(space.name)
        release = release_for(service.name)
        objects = self.releases.objects(namespace, release)
        if not objects:
            return Observed(running=False, healthy=None, detail=f"no release {release}")
        return observed(namespace, objects, self.workloads)

    def stop(self, space: SpaceRef, service: ServiceName) -> None:
        namespace = self.namespaces.name(space.name)
        self.workloads.scale_to_zero(namespace, release=release_for(service))

    def sleep(self, space: SpaceRef, services: Sequence[ServiceName]) -> None:
        self.workloads.scale_to_zero(self.namespaces.name(space.name), release=None)

    def destroy(self, space: SpaceRef) -> None:
        """Uninstall the releases (newest first), then delete the namespace and wait for it."""
        namespace = self.namespaces.name(space.name)
        found = self.namespaces.read(namespace)
        if found is None:
            return
        self.namespaces.refuse_unless_ours(found, space.name)
        self.releases.uninstall_all(namespace)
        self.namespaces.delete(namespace, found)

    def spaces(self) -> set[SpaceName]:
        """Spaces with a labelled namespace. A failed list raises: it must never look empty."""
        return self.namespaces.spaces()

    def adopt(self, spaces: Collection[SpaceName]) -> None:
        self.namespaces.adopt(spaces)

    def logs(
        self,
        space: SpaceRef,
        service: ServiceName,
        *,
        tail: int,
        follow: bool,
        stop: threading.Event | None = None,
    ) -> Iterator[str]:
        namespace = self.namespaces.name(space.name)
        objects = self.releases.objects(namespace, release_for(service))
        pods = self.workloads.pods_of(namespace, self.workloads.of(namespace, objects))
        for pod in pods[:1]:
            with answering(verb="get", resource="pods/log"):
                stream: Any = self.core.read_namespaced_pod_log(
                    pod.metadata.name,
                    namespace,
                    tail_lines=tail,
                    follow=follow,
                    _preload_content=False,
                )
            with closed_on(stop, stream), answering(verb="read", resource="pods/log"):
                for line in stream.stream():  # urllib3 response, as _preload_content=False gives
                    yield line.decode(errors="replace")

    def close(self) -> None:
        self.watches.stop()

    def _ingress_hosts(self, namespace: str, release: str) -> list[str]:
        """`scheme://host` of each rule of the release's Ingresses."""
        hosts = []
        for ref in self.releases.objects(namespace, release):
            if ref.kind != "Ingress":
                continue
            try:
                with answering(verb="get", resource="ingresses"):
                    ingress = self.net.read_namespaced_ingress(ref.name, namespace)
            except NotFound:
                continue
            spec = ingress.spec
            if spec is None:
                continue
            tls = {h for t in (spec.tls or []) for h in (t.hosts or [])}
            for rule in spec.rules or []:
                if rule.host:
                    hosts.append(f"{'https' if rule.host in tls else 'http'}://{rule.host}")
        return hosts
