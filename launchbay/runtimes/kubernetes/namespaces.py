"""A namespace per space: its name, made with Launchbay's labels and the space's policy,
found again by label, adopted from before names carried the installation, and deleted
with a UID precondition so that one re-created under the same name is never removed by
mistake. Never default, kube-* or the server's own namespace, nor another server's."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Collection, Mapping
from typing import Any

from kubernetes import client

from launchbay.domain.errors import NotFound, PermanentError
from launchbay.domain.names import SpaceName
from launchbay.runtimes.base import RuntimeUnavailable, SpaceRef
from launchbay.runtimes.kubernetes.errors import answering, create
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
)
from launchbay.runtimes.kubernetes.policy import Policy
from launchbay.runtimes.kubernetes.settings import ClusterSettings


class Namespaces:
    def __init__(self, core: client.CoreV1Api, settings: ClusterSettings, policy: Policy) -> None:
        self.core = core
        self.settings = settings
        self.policy = policy
        self._legacy: set[str] = set()  # spaces whose namespace is `<prefix><space>`

    def name(self, space: str) -> NamespaceName:
        if space in self._legacy:
            return namespace_for(self.settings.namespace_prefix, SpaceName(space))
        installation = self.settings.installation
        prefix = self.settings.namespace_prefix + (f"{installation}-" if installation else "")
        return namespace_for(prefix, SpaceName(space))

    def spaces(self) -> set[SpaceName]:
        """Spaces with a labelled namespace. A failed list raises: it must never look empty."""
        found = set()
        for ns in self._labelled():
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

    def adopt(self, spaces: Collection[SpaceName]) -> None:
        """Namespaces of these live spaces made before namespaces carried an installation
        (`<prefix><space>`, unlabelled) become this installation's: labelled once, and kept
        under their old name. Unlabelled ones of other spaces are another server's."""
        for ns in self._labelled():
            labels = ns.metadata.labels or {}
            space = labels.get(LABEL_SPACE, "")
            old = f"{self.settings.namespace_prefix}{space}"
            if space not in spaces or ns.metadata.name != old or self._protected(old):
                continue
            if labels.get(LABEL_INSTALLATION) not in (None, self.settings.installation):
                continue
            if LABEL_INSTALLATION not in labels:
                patch = {"metadata": {"labels": {LABEL_INSTALLATION: self.settings.installation}}}
                with answering(verb="patch", resource="namespaces"):
                    self.core.patch_namespace(old, patch)
            self._legacy.add(space)

    def ensure(self, space: SpaceRef) -> NamespaceName:
        """The space's namespace, made with its labels and policy if it is not there yet;
        refused if what is there is not this space's."""
        namespace = self.name(space.name)
        if self._protected(namespace):
            raise PermanentError(
                f"namespace {namespace!r} is protected; choose another prefix or name"
            )
        found = self.read(namespace)
        if found is not None:
            self.refuse_unless_ours(found, space.name)
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
        create(lambda: self.core.create_namespace(body), verb="create", resource="namespaces")
        self.policy.apply(namespace)
        return namespace

    def read(self, namespace: str) -> Any:
        """The namespace, or None if there is none."""
        try:
            with answering(verb="get", resource="namespaces"):
                return self.core.read_namespace(namespace)
        except NotFound:
            return None

    def refuse_unless_ours(self, found: Any, space: str) -> None:
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

    def delete(self, namespace: str, found: Any) -> None:
        """Delete the namespace, the one read as `found` (by its UID), and wait until it is
        gone."""
        preconditions = (
            client.V1Preconditions(uid=found.metadata.uid) if found.metadata.uid else None
        )
        with contextlib.suppress(NotFound), answering(verb="delete", resource="namespaces"):
            self.core.delete_namespace(
                namespace, body=client.V1DeleteOptions(preconditions=preconditions)
            )
        self._wait_gone(namespace)

    def _wait_gone(self, namespace: str) -> None:
        deadline = time.monotonic() + self.settings.delete_timeout
        while (found := self.read(namespace)) is not None:
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

    def _labelled(self) -> list[Any]:
        with answering(verb="list", resource="namespaces"):
            listed = self.core.list_namespace(label_selector=f"{MANAGED_BY}={LAUNCHBAY}")
        return list(listed.items)

    def _mine(self, labels: Mapping[str, str], name: str) -> bool:
        """A namespace this installation made (or adopted, from before names carried it)."""
        found = labels.get(LABEL_INSTALLATION)
        if found is None:
            space = labels.get(LABEL_SPACE, "")
            return space in self._legacy and name == self.name(space)
        return found == self.settings.installation

    def _protected(self, namespace: str) -> bool:
        return is_protected(namespace, own=self.settings.own_namespace)
