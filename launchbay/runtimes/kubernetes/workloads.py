"""A release's workloads as the watches see them, the pods they own, and putting them to
sleep (scaled to zero, the replicas to restore kept in an annotation) and waking them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from kubernetes import client

from launchbay.runtimes.kubernetes.cache import Watches
from launchbay.runtimes.kubernetes.errors import answering
from launchbay.runtimes.kubernetes.release import ObjectRef
from launchbay.runtimes.kubernetes.releases import Releases

WORKLOADS = ("deployments", "statefulsets", "daemonsets", "jobs")
PLURAL = {
    "Deployment": "deployments",
    "StatefulSet": "statefulsets",
    "DaemonSet": "daemonsets",
    "Job": "jobs",
}
REPLICAS_BEFORE_SLEEP = "launchbay.dev/replicas"


class Workloads:
    def __init__(
        self,
        core: client.CoreV1Api,
        apps: client.AppsV1Api,
        watches: Watches,
        releases: Releases,
    ) -> None:
        self.core = core
        self.apps = apps
        self.watches = watches
        self.releases = releases

    def of(self, namespace: str, objects: Sequence[ObjectRef]) -> dict[str, list[Any]]:
        """The release's workloads as the watches see them, by kind."""
        found: dict[str, list[Any]] = {kind: [] for kind in WORKLOADS}
        for ref in objects:
            kind = PLURAL.get(ref.kind)
            if kind is None:
                continue
            found[kind] += [
                x
                for x in self.watches.get(kind).in_namespace(namespace)
                if x.metadata.name == ref.name
            ]
        return found

    def pods_of(self, namespace: str, workloads: Mapping[str, Sequence[Any]]) -> list[Any]:
        """The pods the workloads own, following owner references (a Deployment's through
        its ReplicaSets), as Kubernetes' garbage collector does."""
        owners = {w.metadata.uid for ws in workloads.values() for w in ws if w.metadata.uid}
        deployments = {d.metadata.uid for d in workloads["deployments"] if d.metadata.uid}
        if deployments:
            owners |= {
                rs.metadata.uid
                for rs in self.watches.get("replicasets").in_namespace(namespace)
                if rs.metadata.uid and _owned_by(rs, deployments)
            }
        return [p for p in self.watches.get("pods").in_namespace(namespace) if _owned_by(p, owners)]

    def unbound_claims(self, namespace: str, objects: Sequence[ObjectRef]) -> list[str]:
        """The release's PersistentVolumeClaims that are not bound yet."""
        names = [r.name for r in objects if r.kind == "PersistentVolumeClaim"]
        if not names:
            return []
        with answering(verb="list", resource="persistentvolumeclaims"):
            claims: list[Any] = self.core.list_namespaced_persistent_volume_claim(namespace).items
        bound = {c.metadata.name for c in claims if c.status and c.status.phase == "Bound"}
        return [n for n in names if n not in bound]

    def scale_to_zero(self, namespace: str, *, release: str | None) -> None:
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

    def wake(self, namespace: str, release: str) -> bool:
        """The release's workloads scaled back to what they had before a sleep; False if
        none was asleep."""
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
            for r in self.releases.objects(namespace, release)
        )

    def _scalable(self, namespace: str) -> list[tuple[str, Any]]:
        with answering(verb="list", resource="statefulsets"):
            sets: list[Any] = self.apps.list_namespaced_stateful_set(namespace).items
        return [("deployments", d) for d in self._list_deployments(namespace)] + [
            ("statefulsets", x) for x in sets if x.metadata.namespace in (namespace, None)
        ]

    def _list_deployments(self, namespace: str) -> list[Any]:
        with answering(verb="list", resource="deployments"):
            listed: list[Any] = self.apps.list_namespaced_deployment(namespace).items
        return [d for d in listed if d.metadata.namespace in (namespace, None)]

    def _patch(self, kind: str, name: str, namespace: str, patch: dict[str, Any]) -> None:
        call = (
            self.apps.patch_namespaced_deployment
            if kind == "deployments"
            else self.apps.patch_namespaced_stateful_set
        )
        with answering(verb="patch", resource=kind):
            changed = call(name, namespace, patch)
        self.watches.put(kind, changed)


def _owned_by(obj: Any, owners: set[str]) -> bool:
    return any(o.uid in owners for o in obj.metadata.owner_references or [])
