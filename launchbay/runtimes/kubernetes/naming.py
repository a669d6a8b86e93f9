"""Names and labels in the cluster, and which namespaces the runtime may never touch."""

from __future__ import annotations

from typing import NewType

from launchbay.domain.errors import Invalid
from launchbay.domain.names import SpaceName
from launchbay.domain.spec import Address

NamespaceName = NewType("NamespaceName", str)
ReleaseName = NewType("ReleaseName", str)

MANAGED_BY = "app.kubernetes.io/managed-by"
LAUNCHBAY = "launchbay"
LABEL_SPACE = "launchbay.dev/space"
LABEL_INSTALLATION = "launchbay.dev/installation"
LABEL_OWNER = "launchbay.dev/owner"
LABEL_TEMPLATE = "launchbay.dev/template"
ANNOTATION_EXPIRES = "launchbay.dev/expires"
JANITOR_EXPIRES = "janitor/expires"  # kube-janitor, where a cluster runs it, is a second safety net

MAX_NAMESPACE = 63


def namespace_for(prefix: str, space: SpaceName) -> NamespaceName:
    """`<prefix><space>`, refused if it would not be a valid namespace name."""
    name = f"{prefix}{space}"
    if len(name) > MAX_NAMESPACE:
        raise Invalid(
            f"namespace {name!r} would be {len(name)} characters; Kubernetes allows "
            f"{MAX_NAMESPACE} (shorten the space name or the prefix {prefix!r})"
        )
    return NamespaceName(name)


def release_for(service: str) -> ReleaseName:
    return ReleaseName(service)


def is_protected(namespace: str, *, own: str | None) -> bool:
    """Never acted on, whatever its labels say: default, kube-*, and the server's own."""
    return namespace == "default" or namespace.startswith("kube-") or namespace == own


def may_delete(
    namespace: str, labels: dict[str, str], *, own: str | None, has_record: bool
) -> bool:
    """Only a namespace that carries the managed-by label, has a space record, and is not
    protected. Each condition alone is not enough."""
    return (
        labels.get(MANAGED_BY) == LAUNCHBAY and has_record and not is_protected(namespace, own=own)
    )


def service_address(
    namespace: NamespaceName, service: str, *, service_name: str | None, port: int | None
) -> Address:
    """Where other services of the space reach it: its Service's in-cluster DNS name."""
    return Address(
        f"{service_name or release_for(service)}.{namespace}.svc.cluster.local", port or 80
    )
