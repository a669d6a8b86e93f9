"""The kubernetes runtime: a namespace per space, a Helm release per service.

Everything it reads and writes in the cluster goes through the official client (rate-
limited, counted); releases go through an Installer (the helm CLI on a real cluster).
Status comes from watch-based caches, so refreshing many spaces costs no API call per
space. It acts only on namespaces that carry Launchbay's managed-by label and the space's
label, never on default, kube-* or its own namespace, and deletes a namespace with a UID
precondition so that one re-created under the same name is never removed by mistake.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from launchbay.domain.errors import Conflict, LaunchbayError, NotFound, PermanentError, Refused
from launchbay.domain.names import ServiceName, SpaceName
from launchbay.domain.plan import Observed
from launchbay.domain.spec import Address, ResolvedService
from launchbay.domain.template import HelmSection, Service
from launchbay.runtimes.base import (
    Runtime,
    RuntimeEvent,
    RuntimeUnavailable,
    ServiceFailed,
    SpaceRef,
    closed_on,
)
from launchbay.runtimes.kubernetes.cache import WatchCache
from launchbay.runtimes.kubernetes.client import LimitedApiClient
from launchbay.runtimes.kubernetes.naming import (
    ANNOTATION_EXPIRES,
    JANITOR_EXPIRES,
    LABEL_INSTALLATION,
    LABEL_OWNER,
    LABEL_SPACE,
    LABEL_TEMPLATE,
    LAUNCHBAY,
    MANAGED_BY,
    NamespaceName,
    is_protected,
    namespace_for,
    release_for,
    service_address,
)
from launchbay.runtimes.kubernetes.release import ObjectRef, objects_of, placement_problems

WORKLOADS = ("deployments", "statefulsets", "daemonsets", "jobs")
PLURAL = {
    "Deployment": "deployments",
    "StatefulSet": "statefulsets",
    "DaemonSet": "daemonsets",
    "Job": "jobs",
}
REPLICAS_BEFORE_SLEEP = "launchbay.dev/replicas"
PULL_FAILURES = ("ImagePullBackOff", "ErrImagePull", "InvalidImageName")
CRASHES = (
    "CrashLoopBackOff",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
)


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


@dataclass(frozen=True)
class ClusterSettings:
    namespace_prefix: str = "lb-"
    # Carried by every namespace it makes, and in their names (`<prefix><installation>-
    # <space>`): two servers with one prefix on one cluster never share a namespace.
    installation: str = ""
    own_namespace: str | None = None
    base_domain: str = ""
    pod_security: str = "baseline"
    quota: dict[str, str] = field(
        default_factory=lambda: {"pods": "50", "requests.cpu": "8", "requests.memory": "16Gi"}
    )
    default_limits: dict[str, str] = field(
        default_factory=lambda: {"cpu": "500m", "memory": "512Mi"}
    )
    delete_timeout: float = 120.0
    # The server's own service account: bound to the built-in `admin` ClusterRole inside each
    # space's namespace, so that helm may install charts there and nowhere else.
    service_account: str | None = None


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
        self._legacy: set[str] = set()  # spaces whose namespace is `<prefix><space>`
        self.core = client.CoreV1Api(api)
        self.apps = client.AppsV1Api(api)
        self.net = client.NetworkingV1Api(api)
        self._deployments: WatchCache | None = None
        self._pods: WatchCache | None = None
        self._events: WatchCache | None = None
        self._workload_caches: dict[str, WatchCache] = {}
        # Each release's objects, by (namespace, release), as its manifest says.
        self._manifests: dict[tuple[str, str], list[ObjectRef]] = {}
        self._manifests_lock = threading.Lock()

    # -- the interface -------------------------------------------------------------------

    def check(self) -> str:
        try:
            self.core.list_namespace(limit=1)
        except ApiException as e:
            raise _translated(e, verb="list", resource="namespaces") from e
        return f"Kubernetes API at {self.api.configuration.host} answers"

    def warnings(self, space: SpaceRef) -> list[RuntimeEvent]:
        """The namespace's Warning events (from a watch, so no API call per space)."""
        found = []
        for event in self._cache("events").in_namespace(self._namespace(space.name)):
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
        self._namespace(name)

    def addresses(
        self, space: SpaceRef, services: Mapping[ServiceName, Service]
    ) -> dict[ServiceName, Address]:
        namespace = self._namespace(space.name)
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
        namespace = self._namespace(space.name)
        release = release_for(service.name)
        hosts = self._ingress_hosts(namespace, release)
        if hosts:
            return {e.name: f"{hosts[0]}{e.path}" for e in service.spec.endpoints}
        services = [
            r.name for r in self._release_objects(namespace, release) if r.kind == "Service"
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
        namespace = self._ensure_namespace(space)
        release = release_for(service.name)
        if self._wake(namespace, release):
            return
        rendered = objects_of(
            self.installer.template(
                release=release,
                namespace=namespace,
                section=section,
                values=section.values,
                service=service.name,
            )
        )
        problems = placement_problems(rendered, namespace)
        if problems:
            raise ServiceFailed(
                service.name, f"chart {section.chart} cannot run in a space: {'; '.join(problems)}"
            )
        self.installer.install(
            release=release,
            namespace=namespace,
            section=section,
            values=section.values,
            service=service.name,
        )
        self._forget(namespace, release)  # read the new manifest at the next look

    def probe(self, space: SpaceRef, service: ResolvedService) -> Observed:
        """The release's own objects, as its manifest names them, judged by Kubernetes'
        status conventions (kstatus): every workload observed at its generation with all
        its replicas updated and available, Jobs complete, claims bound."""
        namespace = self._namespace(space.name)
        release = release_for(service.name)
        objects = self._release_objects(namespace, release)
        if not objects:
            return Observed(running=False, healthy=None, detail=f"no release {release}")
        found = self._workloads(namespace, objects)
        pods = self._pods_of(namespace, found)
        trouble = _pod_trouble(pods)
        if trouble and any(reason in trouble for reason in (*PULL_FAILURES, *CRASHES)):
            return Observed(running=False, healthy=False, detail=trouble)
        failed = next((why for w in found["jobs"] if (why := _job_failure(w))), "") or next(
            (why for d in found["deployments"] if (why := _deadline_exceeded(d))), ""
        )
        if failed:
            return Observed(running=False, healthy=False, detail=failed)
        missing = [r for r in objects if r.kind in PLURAL and not _named(found, r)]
        if missing:
            return Observed(running=True, healthy=False, detail=f"waiting for {missing[0]}")
        jobs_only = bool(found["jobs"]) and not any(found[k] for k in WORKLOADS if k != "jobs")
        if jobs_only and all(_job_complete(j) for j in found["jobs"]):
            return Observed(running=False, healthy=True, detail="jobs complete", completed=True)
        scalable = found["deployments"] + found["statefulsets"]
        wanted = sum(w.spec.replicas or 0 for w in scalable)
        if scalable and wanted == 0 and not found["daemonsets"] and not found["jobs"]:
            return Observed(running=False, healthy=None, detail="scaled to zero")
        if not any(found.values()):
            kinds = sorted({r.kind for r in objects})
            return Observed(running=True, healthy=True, detail=f"no workloads ({', '.join(kinds)})")
        unbound = self._unbound_claims(namespace, objects)
        ready = (
            all(_rolled_out(d) for d in found["deployments"])
            and all(_statefulset_ready(x) for x in found["statefulsets"])
            and all(_daemonset_ready(x) for x in found["daemonsets"])
            and all(_job_complete(x) for x in found["jobs"])
            and not unbound
        )
        restarts = sum(_restarts(p) for p in pods)
        detail = _summary(found) + (f", {restarts} restarts" if restarts else "")
        detail += f"; claim {unbound[0]} not bound" if unbound else ""
        return Observed(
            running=True, healthy=ready, detail=detail + (f"; {trouble}" if trouble else "")
        )

    def _release_objects(self, namespace: str, release: str) -> list[ObjectRef]:
        """The release's objects, from its manifest (read once, then kept until it changes)."""
        key = (namespace, release)
        with self._manifests_lock:
            known = self._manifests.get(key)
        if known is None:
            known = [
                r
                for r in objects_of(self.installer.manifest(release=release, namespace=namespace))
                if not r.hook
            ]
            if known:
                with self._manifests_lock:
                    self._manifests[key] = known
        return known

    def _forget(self, namespace: str, release: str | None = None) -> None:
        with self._manifests_lock:
            for key in [k for k in self._manifests if k[0] == namespace]:
                if release is None or key[1] == release:
                    del self._manifests[key]

    def _workloads(self, namespace: str, objects: Sequence[ObjectRef]) -> dict[str, list[Any]]:
        """The release's workloads as the watches see them, by kind."""
        found: dict[str, list[Any]] = {kind: [] for kind in WORKLOADS}
        for ref in objects:
            kind = PLURAL.get(ref.kind)
            if kind is None:
                continue
            found[kind] += [
                x for x in self._cache(kind).in_namespace(namespace) if x.metadata.name == ref.name
            ]
        return found

    def _pods_of(self, namespace: str, workloads: Mapping[str, Sequence[Any]]) -> list[Any]:
        """The pods the workloads own, following owner references (a Deployment's through
        its ReplicaSets), as Kubernetes' garbage collector does."""
        owners = {w.metadata.uid for ws in workloads.values() for w in ws if w.metadata.uid}
        deployments = {d.metadata.uid for d in workloads["deployments"] if d.metadata.uid}
        if deployments:
            owners |= {
                rs.metadata.uid
                for rs in self._cache("replicasets").in_namespace(namespace)
                if rs.metadata.uid and _owned_by(rs, deployments)
            }
        return [p for p in self._cache("pods").in_namespace(namespace) if _owned_by(p, owners)]

    def _unbound_claims(self, namespace: str, objects: Sequence[ObjectRef]) -> list[str]:
        names = [r.name for r in objects if r.kind == "PersistentVolumeClaim"]
        if not names:
            return []
        try:
            claims: list[Any] = self.core.list_namespaced_persistent_volume_claim(namespace).items
        except ApiException as e:
            raise _translated(e, verb="list", resource="persistentvolumeclaims") from e
        bound = {c.metadata.name for c in claims if c.status and c.status.phase == "Bound"}
        return [n for n in names if n not in bound]

    def _ingress_hosts(self, namespace: str, release: str) -> list[str]:
        """`scheme://host` of each rule of the release's Ingresses."""
        hosts = []
        for ref in self._release_objects(namespace, release):
            if ref.kind != "Ingress":
                continue
            try:
                ingress = self.net.read_namespaced_ingress(ref.name, namespace)
            except ApiException as e:
                if e.status == 404:
                    continue
                raise _translated(e, verb="get", resource="ingresses") from e
            spec = ingress.spec
            if spec is None:
                continue
            tls = {h for t in (spec.tls or []) for h in (t.hosts or [])}
            for rule in spec.rules or []:
                if rule.host:
                    hosts.append(f"{'https' if rule.host in tls else 'http'}://{rule.host}")
        return hosts

    def stop(self, space: SpaceRef, service: ServiceName) -> None:
        self._scale_to_zero(self._namespace(space.name), release=release_for(service))

    def sleep(self, space: SpaceRef, services: Sequence[ServiceName]) -> None:
        self._scale_to_zero(self._namespace(space.name), release=None)

    def destroy(self, space: SpaceRef) -> None:
        """Uninstall the releases (newest first), then delete the namespace and wait for it."""
        namespace = self._namespace(space.name)
        found = self._read_namespace(namespace)
        if found is None:
            return
        self._refuse_unless_ours(found, space.name)
        for release in self.installer.releases(namespace):
            self.installer.uninstall(release=release, namespace=namespace, service=release)
        self._forget(namespace)
        preconditions = (
            client.V1Preconditions(uid=found.metadata.uid) if found.metadata.uid else None
        )
        try:
            self.core.delete_namespace(
                namespace, body=client.V1DeleteOptions(preconditions=preconditions)
            )
        except ApiException as e:
            if e.status != 404:
                raise _translated(e, verb="delete", resource="namespaces") from e
        self._wait_gone(namespace)

    def spaces(self) -> set[SpaceName]:
        """Spaces with a labelled namespace. A failed list raises: it must never look empty."""
        try:
            listed = self.core.list_namespace(label_selector=f"{MANAGED_BY}={LAUNCHBAY}")
        except ApiException as e:
            raise _translated(e, verb="list", resource="namespaces") from e
        found = set()
        namespaces: list[Any] = list(listed.items)
        for ns in namespaces:
            labels = ns.metadata.labels or {}
            if (
                labels.get(MANAGED_BY) == LAUNCHBAY
                and labels.get(LABEL_SPACE)
                and ns.metadata.name.startswith(self.settings.namespace_prefix)
                and not self._protected(ns.metadata.name)
                and self._mine(labels, ns.metadata.name)
            ):
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
        namespace = self._namespace(space.name)
        objects = self._release_objects(namespace, release_for(service))
        pods = self._pods_of(namespace, self._workloads(namespace, objects))
        for pod in pods[:1]:
            try:
                stream: Any = self.core.read_namespaced_pod_log(
                    pod.metadata.name,
                    namespace,
                    tail_lines=tail,
                    follow=follow,
                    _preload_content=False,
                )
            except ApiException as e:
                raise _translated(e, verb="get", resource="pods/log") from e
            with closed_on(stop, stream):
                for line in stream.stream():  # urllib3 response, as _preload_content=False gives
                    yield line.decode(errors="replace")

    def close(self) -> None:
        for cache in (self._deployments, self._pods, self._events, *self._workload_caches.values()):
            if cache is not None:
                cache.stop()

    # -- namespaces ----------------------------------------------------------------------

    def _namespace(self, space: str) -> NamespaceName:
        if space in self._legacy:
            return namespace_for(self.settings.namespace_prefix, SpaceName(space))
        installation = self.settings.installation
        prefix = self.settings.namespace_prefix + (f"{installation}-" if installation else "")
        return namespace_for(prefix, SpaceName(space))

    def _mine(self, labels: Mapping[str, str], name: str) -> bool:
        """A namespace this installation made (or adopted, from before names carried it)."""
        found = labels.get(LABEL_INSTALLATION)
        if found is None:
            space = labels.get(LABEL_SPACE, "")
            return space in self._legacy and name == self._namespace(space)
        return found == self.settings.installation

    def adopt(self, spaces: Collection[SpaceName]) -> None:
        """Namespaces of these live spaces made before namespaces carried an installation
        (`<prefix><space>`, unlabelled) become this installation's: labelled once, and kept
        under their old name. Unlabelled ones of other spaces are another server's."""
        try:
            listed = self.core.list_namespace(label_selector=f"{MANAGED_BY}={LAUNCHBAY}")
        except ApiException as e:
            raise _translated(e, verb="list", resource="namespaces") from e
        namespaces: list[Any] = list(listed.items)
        for ns in namespaces:
            labels = ns.metadata.labels or {}
            space = labels.get(LABEL_SPACE, "")
            old = f"{self.settings.namespace_prefix}{space}"
            if space not in spaces or ns.metadata.name != old or self._protected(old):
                continue
            if labels.get(LABEL_INSTALLATION) not in (None, self.settings.installation):
                continue
            if LABEL_INSTALLATION not in labels:
                patch = {"metadata": {"labels": {LABEL_INSTALLATION: self.settings.installation}}}
                try:
                    self.core.patch_namespace(old, patch)
                except ApiException as e:
                    raise _translated(e, verb="patch", resource="namespaces") from e
            self._legacy.add(space)

    def _protected(self, namespace: str) -> bool:
        return is_protected(namespace, own=self.settings.own_namespace)

    def _read_namespace(self, namespace: str) -> Any:
        try:
            return self.core.read_namespace(namespace)
        except ApiException as e:
            if e.status == 404:
                return None
            raise _translated(e, verb="get", resource="namespaces") from e

    def _refuse_unless_ours(self, found: Any, space: str) -> None:
        labels = found.metadata.labels or {}
        name = found.metadata.name
        if (
            self._protected(name)
            or labels.get(MANAGED_BY) != LAUNCHBAY
            or labels.get(LABEL_SPACE) != space
            or not self._mine(labels, name)
        ):
            raise PermanentError(
                f"namespace {name!r} is not this space's (labels {labels}); "
                "Launchbay leaves it alone"
            )

    def _ensure_namespace(self, space: SpaceRef) -> NamespaceName:
        namespace = self._namespace(space.name)
        if self._protected(namespace):
            raise PermanentError(
                f"namespace {namespace!r} is protected; choose another prefix or name"
            )
        found = self._read_namespace(namespace)
        if found is not None:
            self._refuse_unless_ours(found, space.name)
            return namespace
        expires = space.expires_at.isoformat(timespec="seconds") if space.expires_at else ""
        body = client.V1Namespace(
            metadata=client.V1ObjectMeta(
                name=namespace,
                labels={
                    MANAGED_BY: LAUNCHBAY,
                    LABEL_INSTALLATION: self.settings.installation,
                    LABEL_SPACE: space.name,
                    LABEL_OWNER: space.owner,
                    LABEL_TEMPLATE: space.template,
                    "pod-security.kubernetes.io/enforce": self.settings.pod_security,
                    "pod-security.kubernetes.io/warn": self.settings.pod_security,
                },
                annotations={ANNOTATION_EXPIRES: expires, JANITOR_EXPIRES: expires}
                if expires
                else {},
            )
        )
        self._create(lambda: self.core.create_namespace(body), verb="create", resource="namespaces")
        self._apply_policy(namespace)
        return namespace

    def _apply_policy(self, namespace: str) -> None:
        """Quota, default limits, and a NetworkPolicy admitting only the space's own traffic."""
        quota = client.V1ResourceQuota(
            metadata=client.V1ObjectMeta(name="launchbay-quota"),
            spec=client.V1ResourceQuotaSpec(hard=self.settings.quota),
        )
        limits = client.V1LimitRange(
            metadata=client.V1ObjectMeta(name="launchbay-limits"),
            spec=client.V1LimitRangeSpec(
                limits=[
                    client.V1LimitRangeItem(type="Container", default=self.settings.default_limits)
                ]
            ),
        )
        isolate = client.V1NetworkPolicy(
            metadata=client.V1ObjectMeta(name="launchbay-isolate"),
            spec=client.V1NetworkPolicySpec(
                pod_selector=client.V1LabelSelector(),
                policy_types=["Ingress"],
                ingress=[
                    client.V1NetworkPolicyIngressRule(
                        var_from=[client.V1NetworkPolicyPeer(pod_selector=client.V1LabelSelector())]
                    )
                ],
            ),
        )
        self._create(
            lambda: self.core.create_namespaced_resource_quota(namespace, quota),
            verb="create",
            resource="resourcequotas",
        )
        self._create(
            lambda: self.core.create_namespaced_limit_range(namespace, limits),
            verb="create",
            resource="limitranges",
        )
        if self.settings.service_account and self.settings.own_namespace:
            binding = client.V1RoleBinding(
                metadata=client.V1ObjectMeta(name="launchbay-admin"),
                role_ref=client.V1RoleRef(
                    api_group="rbac.authorization.k8s.io", kind="ClusterRole", name="admin"
                ),
                subjects=[
                    client.RbacV1Subject(
                        kind="ServiceAccount",
                        name=self.settings.service_account,
                        namespace=self.settings.own_namespace,
                    )
                ],
            )
            rbac = client.RbacAuthorizationV1Api(self.api)
            self._create(
                lambda: rbac.create_namespaced_role_binding(namespace, binding),
                verb="create",
                resource="rolebindings",
            )
        self._create(
            lambda: self.net.create_namespaced_network_policy(namespace, isolate),
            verb="create",
            resource="networkpolicies",
        )

    def _create(self, call: Any, *, verb: str, resource: str) -> None:
        try:
            call()
        except ApiException as e:
            if e.status != 409:  # already there: creating is idempotent
                raise _translated(e, verb=verb, resource=resource) from e

    def _wait_gone(self, namespace: str) -> None:
        deadline = time.monotonic() + self.settings.delete_timeout
        while (found := self._read_namespace(namespace)) is not None:
            if time.monotonic() > deadline:
                finalizers = [
                    *(found.metadata.finalizers or []),
                    *((found.spec.finalizers if found.spec else None) or []),
                ]
                raise RuntimeUnavailable(
                    f"namespace {namespace} is stuck terminating; finalizers: "
                    f"{', '.join(finalizers) or 'none listed'}"
                )
            time.sleep(0.5)

    # -- workloads -----------------------------------------------------------------------

    def _scale_to_zero(self, namespace: str, *, release: str | None) -> None:
        """Scale Deployments and StatefulSets to zero, recording the replicas to restore."""
        for kind, workload in self._scalable(namespace):
            if release is not None and not self._in_release(namespace, release, workload):
                continue
            replicas = workload.spec.replicas or 0
            if replicas:
                patch = {
                    "metadata": {"annotations": {REPLICAS_BEFORE_SLEEP: str(replicas)}},
                    "spec": {"replicas": 0},
                }
                self._patch(kind, workload.metadata.name, namespace, patch)

    def _wake(self, namespace: str, release: str) -> bool:
        woken = False
        for kind, workload in self._scalable(namespace):
            before = (workload.metadata.annotations or {}).get(REPLICAS_BEFORE_SLEEP)
            mine = self._in_release(namespace, release, workload)
            if mine and before and not workload.spec.replicas:
                patch = {
                    "metadata": {"annotations": {REPLICAS_BEFORE_SLEEP: None}},
                    "spec": {"replicas": int(before)},
                }
                self._patch(kind, workload.metadata.name, namespace, patch)
                woken = True
        return woken

    def _in_release(self, namespace: str, release: str, workload: Any) -> bool:
        return any(
            r.kind == workload.kind and r.name == workload.metadata.name
            for r in self._release_objects(namespace, release)
        )

    def _scalable(self, namespace: str) -> list[tuple[str, Any]]:
        try:
            sets: list[Any] = self.apps.list_namespaced_stateful_set(namespace).items
        except ApiException as e:
            raise _translated(e, verb="list", resource="statefulsets") from e
        return [("deployments", d) for d in self._list_deployments(namespace)] + [
            ("statefulsets", x) for x in sets if x.metadata.namespace in (namespace, None)
        ]

    def _list_deployments(self, namespace: str) -> list[Any]:
        try:
            listed: list[Any] = self.apps.list_namespaced_deployment(namespace).items
            return [d for d in listed if d.metadata.namespace in (namespace, None)]
        except ApiException as e:
            raise _translated(e, verb="list", resource="deployments") from e

    def _patch(self, kind: str, name: str, namespace: str, patch: dict[str, Any]) -> None:
        call = (
            self.apps.patch_namespaced_deployment
            if kind == "deployments"
            else self.apps.patch_namespaced_stateful_set
        )
        try:
            changed = call(name, namespace, patch)
        except ApiException as e:
            raise _translated(e, verb="patch", resource=kind) from e
        cache = self._deployments if kind == "deployments" else self._workload_caches.get(kind)
        if cache is not None:
            cache.put(changed)

    def _cache(self, kind: str) -> WatchCache:
        prefix = self.settings.namespace_prefix

        def ours(obj: Any) -> bool:
            return bool(obj.metadata.namespace and obj.metadata.namespace.startswith(prefix))

        if kind in ("statefulsets", "daemonsets", "jobs", "replicasets"):
            if kind not in self._workload_caches:
                list_all = {
                    "statefulsets": self.apps.list_stateful_set_for_all_namespaces,
                    "daemonsets": self.apps.list_daemon_set_for_all_namespaces,
                    "jobs": client.BatchV1Api(self.api).list_job_for_all_namespaces,
                    "replicasets": self.apps.list_replica_set_for_all_namespaces,
                }[kind]
                self._workload_caches[kind] = WatchCache(kind, list_all, selector="", keep=ours)
            cache = self._workload_caches[kind]
        elif kind == "events":
            if self._events is None:
                self._events = WatchCache(
                    "events",
                    self.core.list_event_for_all_namespaces,
                    selector="",
                    keep=lambda e: ours(e) and e.type == "Warning",
                )
            cache = self._events
        elif kind == "deployments":
            if self._deployments is None:
                self._deployments = WatchCache(
                    "deployments",
                    self.apps.list_deployment_for_all_namespaces,
                    selector="",
                    keep=ours,
                )
            cache = self._deployments
        else:
            if self._pods is None:
                self._pods = WatchCache(
                    "pods", self.core.list_pod_for_all_namespaces, selector="", keep=ours
                )
            cache = self._pods
        if not cache.wait_synced(timeout=10):
            raise RuntimeUnavailable(f"the {kind} watch has not synced with the API server")
        return cache


def _named(found: Mapping[str, Sequence[Any]], ref: ObjectRef) -> bool:
    return any(x.metadata.name == ref.name for x in found[PLURAL[ref.kind]])


def _owned_by(obj: Any, owners: set[str]) -> bool:
    return any(o.uid in owners for o in obj.metadata.owner_references or [])


def _deadline_exceeded(deployment: Any) -> str:
    """A Deployment whose rollout gave up (its progressDeadlineSeconds passed)."""
    for condition in (deployment.status.conditions if deployment.status else None) or []:
        if condition.type == "Progressing" and condition.reason == "ProgressDeadlineExceeded":
            return f"deployment {deployment.metadata.name}: {condition.message or condition.reason}"
    return ""


def _rolled_out(deployment: Any) -> bool:
    status = deployment.status
    wanted = deployment.spec.replicas or 0
    if status is None:
        return False
    generation = deployment.metadata.generation
    observed = status.observed_generation
    return (
        (generation is None or (observed or 0) >= generation)
        and (status.updated_replicas or 0) >= wanted
        and (status.available_replicas or 0) >= wanted
    )


def _statefulset_ready(sts: Any) -> bool:
    status, wanted = sts.status, sts.spec.replicas or 0
    return (
        bool(status)
        and (status.ready_replicas or 0) >= wanted
        and (status.updated_replicas or 0) >= wanted
    )


def _daemonset_ready(ds: Any) -> bool:
    status = ds.status
    if status is None:
        return False
    wanted = status.desired_number_scheduled or 0
    return (status.number_ready or 0) >= wanted and (status.updated_number_scheduled or 0) >= wanted


def _job_complete(job: Any) -> bool:
    return bool(job.status) and (job.status.succeeded or 0) >= (job.spec.completions or 1)


def _job_failure(job: Any) -> str:
    for condition in (job.status.conditions if job.status else None) or []:
        if condition.type == "Failed" and condition.status == "True":
            why = f"{condition.reason or ''} {condition.message or ''}".strip()
            return f"job {job.metadata.name} failed: {why}"
    return ""


def _summary(found: dict[str, list[Any]]) -> str:
    parts = []
    deployments = found["deployments"]
    if deployments:
        available = sum((d.status.available_replicas or 0) if d.status else 0 for d in deployments)
        parts.append(f"{available}/{sum(d.spec.replicas or 0 for d in deployments)} available")
    for sts in found["statefulsets"]:
        ready = (sts.status.ready_replicas or 0) if sts.status else 0
        parts.append(f"statefulset {ready}/{sts.spec.replicas or 0} ready")
    for ds in found["daemonsets"]:
        status = ds.status
        parts.append(
            f"daemonset {status.number_ready or 0}/{status.desired_number_scheduled or 0} ready"
            if status
            else "daemonset starting"
        )
    for job in found["jobs"]:
        parts.append(f"job {'complete' if _job_complete(job) else 'running'}")
    return ", ".join(parts)


def _restarts(pod: Any) -> int:
    return (
        sum(c.restart_count or 0 for c in (pod.status.container_statuses or []))
        if pod.status
        else 0
    )


def _pod_trouble(pods: Sequence[Any]) -> str:
    """Why the pods are not ready: a waiting reason with its message, or unschedulable."""
    for pod in pods:
        status = pod.status
        if status is None:
            continue
        for container in status.container_statuses or []:
            waiting = container.state.waiting if container.state else None
            if waiting and waiting.reason:
                image = f" (image {container.image})" if waiting.reason in PULL_FAILURES else ""
                return f"{waiting.reason}{image}: {waiting.message or ''}".rstrip(": ")
        for condition in status.conditions or []:
            if condition.type == "PodScheduled" and condition.status == "False":
                return f"pending: {condition.reason}: {condition.message or ''}".rstrip(": ")
    return ""


def _translated(error: ApiException, *, verb: str, resource: str) -> LaunchbayError:
    """The one translation of the API's answers into Launchbay's error classes: refused
    (rights or input; never retried), not found, conflict (changed meanwhile; retried),
    or unavailable (retried after the delay the API asked for, if it did)."""
    what = f"{verb} {resource}"
    status = error.status or 0
    said = f"{status} {error.reason or ''}".strip() + _message(error)
    if status in (401, 403):
        return Refused(
            f"no rights to {what} in the cluster ({said}); grant them to Launchbay's "
            "service account (see the chart's ClusterRole)"
        )
    if status in (400, 405, 406, 413, 415, 422):
        return Refused(f"the cluster refused to {what}: {said}")
    if status == 404:
        return NotFound(f"the cluster has no such {resource} to {verb}: {said}")
    if status == 409:
        return Conflict(f"the cluster could not {what}, it changed meanwhile: {said}")
    delay = 5.0
    with contextlib.suppress(TypeError, ValueError, AttributeError):
        delay = float((error.headers or {}).get("Retry-After", delay))
    return RuntimeUnavailable(f"the Kubernetes API did not {what}: {said}", delay=delay)


def _message(error: ApiException) -> str:
    """The `message` of the API's Status body, if it sent one."""
    try:
        message = json.loads(error.body or "{}").get("message", "")
    except (ValueError, AttributeError):
        return ""
    return f": {message}" if isinstance(message, str) and message else ""
