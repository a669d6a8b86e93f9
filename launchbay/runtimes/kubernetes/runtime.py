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
from collections.abc import Iterator, Mapping, Sequence
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

INSTANCE = "app.kubernetes.io/instance"
WORKLOADS = ("deployments", "statefulsets", "daemonsets", "jobs")
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


@dataclass(frozen=True)
class ClusterSettings:
    namespace_prefix: str = "lb-"
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
        self.core = client.CoreV1Api(api)
        self.apps = client.AppsV1Api(api)
        self.net = client.NetworkingV1Api(api)
        self._deployments: WatchCache | None = None
        self._pods: WatchCache | None = None
        self._events: WatchCache | None = None
        self._workload_caches: dict[str, WatchCache] = {}

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
        """Ingress hosts under the base domain, or a port-forward hint where there is none."""
        section = service.spec.helm
        if section is None:
            return {}
        if self.settings.base_domain:
            host = f"{service.name}-{space.name}.{self.settings.base_domain}"
            return {e.name: f"http://{host}{e.path}" for e in service.spec.endpoints}
        target = section.service or release_for(service.name)
        port = section.port or 80
        hint = f"kubectl -n {self._namespace(space.name)} port-forward svc/{target} {port}:{port}"
        return {e.name: hint for e in service.spec.endpoints}

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
        self.installer.install(
            release=release,
            namespace=namespace,
            section=section,
            values=section.values,
            service=service.name,
        )

    def probe(self, space: SpaceRef, service: ResolvedService) -> Observed:
        namespace = self._namespace(space.name)
        release = release_for(service.name)
        found = {kind: self._of_release(kind, namespace, release) for kind in WORKLOADS}
        if not any(found.values()):
            # The watch may not have seen a release installed a moment ago: ask once.
            found["deployments"] = [
                d for d in self._list_deployments(namespace) if _release_of(d) == release
            ]
        if not any(found.values()):
            return Observed(
                running=False, healthy=None, detail=f"no workload for release {release}"
            )
        pods = self._of_release("pods", namespace, release)
        trouble = _pod_trouble(pods)
        if trouble and any(reason in trouble for reason in (*PULL_FAILURES, *CRASHES)):
            return Observed(running=False, healthy=False, detail=trouble)
        failed_job = next((_job_failure(j) for j in found["jobs"] if _job_failure(j)), "")
        if failed_job:
            return Observed(running=False, healthy=False, detail=failed_job)
        scalable = found["deployments"] + found["statefulsets"]
        wanted = sum(w.spec.replicas or 0 for w in scalable)
        if scalable and wanted == 0 and not found["daemonsets"] and not found["jobs"]:
            return Observed(running=False, healthy=None, detail="scaled to zero")
        if any(
            not (w.status and w.status.observed_generation) for w in scalable + found["daemonsets"]
        ):
            return Observed(running=True, healthy=False, detail="rolling out")
        ready = (
            all(_rolled_out(d) for d in found["deployments"])
            and all(_statefulset_ready(x) for x in found["statefulsets"])
            and all(_daemonset_ready(x) for x in found["daemonsets"])
            and all(_job_complete(x) for x in found["jobs"])
        )
        restarts = sum(_restarts(p) for p in pods)
        detail = _summary(found) + (f", {restarts} restarts" if restarts else "")
        return Observed(
            running=True, healthy=ready, detail=detail + (f"; {trouble}" if trouble else "")
        )

    def _of_release(self, kind: str, namespace: str, release: str) -> list[Any]:
        return [x for x in self._cache(kind).in_namespace(namespace) if _release_of(x) == release]

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
        pods = [
            p
            for p in self._cache("pods").in_namespace(namespace)
            if _release_of(p) == release_for(service)
        ]
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
        return namespace_for(self.settings.namespace_prefix, SpaceName(space))

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
            if release is not None and _release_of(workload) != release:
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
            if _release_of(workload) == release and before and not workload.spec.replicas:
                patch = {
                    "metadata": {"annotations": {REPLICAS_BEFORE_SLEEP: None}},
                    "spec": {"replicas": int(before)},
                }
                self._patch(kind, workload.metadata.name, namespace, patch)
                woken = True
        return woken

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

        if kind in ("statefulsets", "daemonsets", "jobs"):
            if kind not in self._workload_caches:
                list_all = {
                    "statefulsets": self.apps.list_stateful_set_for_all_namespaces,
                    "daemonsets": self.apps.list_daemon_set_for_all_namespaces,
                    "jobs": client.BatchV1Api(self.api).list_job_for_all_namespaces,
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


def _release_of(obj: Any) -> str | None:
    labels = obj.metadata.labels or {}
    release: str | None = labels.get(INSTANCE) or obj.metadata.name
    return release


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
