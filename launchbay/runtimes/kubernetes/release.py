"""What a Helm release is made of: the objects of its manifest, as helm installed them (or
would), whatever the chart's names and labels. Pure: parsing and rules, no API calls."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# Kinds that live outside any namespace: two spaces of one template would fight over one
# name, and Launchbay's rights stop at the space's namespace.
CLUSTER_SCOPED = frozenset(
    {
        "APIService",
        "CSIDriver",
        "ClusterIssuer",
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "IngressClass",
        "MutatingWebhookConfiguration",
        "Namespace",
        "PersistentVolume",
        "PodSecurityPolicy",
        "PriorityClass",
        "RuntimeClass",
        "StorageClass",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
        "ValidatingWebhookConfiguration",
        "VolumeAttachment",
    }
)
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job")
HOOK = "helm.sh/hook"


@dataclass(frozen=True)
class ObjectRef:
    kind: str
    name: str
    namespace: str | None = None  # as the manifest says; None: the release's
    api_version: str = ""
    hook: str = ""  # helm.sh/hook, for a hook's objects

    def __str__(self) -> str:
        return f"{self.kind} {self.name!r}"


def objects_of(manifests: Iterable[Mapping[str, Any]]) -> list[ObjectRef]:
    """The objects of rendered manifests (a `List` unfolded), in order."""
    found: list[ObjectRef] = []
    for doc in manifests:
        if not isinstance(doc, Mapping) or not doc.get("kind"):
            continue
        if doc["kind"].endswith("List") and isinstance(doc.get("items"), list):
            found += objects_of(doc["items"])
            continue
        meta = doc.get("metadata") or {}
        annotations = meta.get("annotations") or {}
        found.append(
            ObjectRef(
                kind=str(doc["kind"]),
                name=str(meta.get("name", "")),
                namespace=meta.get("namespace"),
                api_version=str(doc.get("apiVersion", "")),
                hook=str(annotations.get(HOOK, "")),
            )
        )
    return found


def placement_problems(objects: Iterable[ObjectRef], namespace: str) -> list[str]:
    """What a space cannot hold, each object named: cluster-wide objects and objects in
    another namespace."""
    problems = []
    for ref in objects:
        if ref.kind in CLUSTER_SCOPED:
            problems.append(
                f"{ref} is cluster-wide: two spaces of one template would fight over its "
                "name, and Launchbay's rights stop at the space's namespace (install it once "
                "for the cluster, and turn it off in the chart's values)"
            )
        elif ref.namespace and ref.namespace != namespace:
            problems.append(
                f"{ref} is placed in namespace {ref.namespace!r}, not in the space's "
                f"{namespace!r} (the chart must use .Release.Namespace)"
            )
    return problems
