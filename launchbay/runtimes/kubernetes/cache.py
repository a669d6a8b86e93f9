"""Watch-based caches: one list-then-watch per kind for all of Launchbay's namespaces.

A status refresh reads these caches, so it costs no API call however many spaces there
are; the watches keep them current. Objects are also filtered here by label, because a
selector is only a request the API server may not honour (emulators ignore them).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from launchbay.runtimes.base import RuntimeUnavailable

log = logging.getLogger(__name__)


class Watches:
    """One WatchCache per kind, started at its first use, for every namespace whose name
    starts with the runtime's prefix (and for events, only warnings)."""

    def __init__(
        self, api: client.ApiClient, *, core: client.CoreV1Api, apps: client.AppsV1Api, prefix: str
    ) -> None:
        self.api = api
        self.core = core
        self.apps = apps
        self.prefix = prefix
        self._caches: dict[str, WatchCache] = {}

    def get(self, kind: str) -> WatchCache:
        """The cache of `kind` (deployments, statefulsets, daemonsets, jobs, replicasets,
        pods or events), once it has listed everything."""
        if kind not in self._caches:
            self._caches[kind] = self._start(kind)
        cache = self._caches[kind]
        if not cache.wait_synced(timeout=10):
            raise RuntimeUnavailable(f"the {kind} watch has not synced with the API server")
        return cache

    def put(self, kind: str, obj: Any) -> None:
        """An object just changed, into its kind's cache if that is watched."""
        cache = self._caches.get(kind)
        if cache is not None:
            cache.put(obj)

    def stop(self) -> None:
        for cache in list(self._caches.values()):
            cache.stop()

    def _start(self, kind: str) -> WatchCache:
        prefix = self.prefix

        def ours(obj: Any) -> bool:
            return bool(obj.metadata.namespace and obj.metadata.namespace.startswith(prefix))

        if kind == "events":
            return WatchCache(
                "events",
                self.core.list_event_for_all_namespaces,
                selector="",
                keep=lambda e: ours(e) and e.type == "Warning",
            )
        list_all = {
            "deployments": self.apps.list_deployment_for_all_namespaces,
            "statefulsets": self.apps.list_stateful_set_for_all_namespaces,
            "daemonsets": self.apps.list_daemon_set_for_all_namespaces,
            "jobs": client.BatchV1Api(self.api).list_job_for_all_namespaces,
            "replicasets": self.apps.list_replica_set_for_all_namespaces,
            "pods": self.core.list_pod_for_all_namespaces,
        }[kind]
        return WatchCache(kind, list_all, selector="", keep=ours)


class WatchCache:
    def __init__(
        self, kind: str, list_all: Callable[..., Any], *, selector: str, keep: Callable[[Any], bool]
    ) -> None:
        self.kind = kind
        self._list_all = list_all
        self._selector = selector
        self._keep = keep
        self._objects: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()
        self._synced = threading.Event()
        self._stopping = threading.Event()
        self._watch: watch.Watch | None = None
        self._thread = threading.Thread(
            target=self._run, name=f"launchbay-watch-{kind}", daemon=True
        )
        self._thread.start()

    def wait_synced(self, timeout: float) -> bool:
        return self._synced.wait(timeout)

    @property
    def synced(self) -> bool:
        return self._synced.is_set()

    def in_namespace(self, namespace: str) -> list[Any]:
        with self._lock:
            return [obj for (ns, _), obj in self._objects.items() if ns == namespace]

    def put(self, obj: Any) -> None:
        """Read your own writes: an object this process just changed, ahead of its watch event."""
        with self._lock:
            if self._keep(obj):
                self._objects[_key(obj)] = obj

    def stop(self) -> None:
        self._stopping.set()
        if self._watch is not None:
            self._watch.stop()

    def _run(self) -> None:
        broken = False
        while not self._stopping.is_set():
            try:
                self._list_and_watch()
            except (ApiException, OSError, ValueError, HTTPError, RuntimeUnavailable) as e:
                # One warning when the watch breaks, not one a second while the API is away.
                if not broken or self._synced.is_set():
                    log.warning(
                        "watch of %s broke, listing again until it answers: %s",
                        self.kind,
                        str(e).splitlines()[0],
                    )
                broken = True
                self._synced.clear()
                self._stopping.wait(1.0)

    def _list_and_watch(self) -> None:
        listed = self._list_all(label_selector=self._selector)
        with self._lock:
            self._objects = {_key(o): o for o in listed.items if self._keep(o)}
        self._synced.set()
        self._watch = watch.Watch()
        for event in self._watch.stream(
            self._list_all,
            label_selector=self._selector,
            resource_version=listed.metadata.resource_version,
            timeout_seconds=300,
        ):
            if self._stopping.is_set():
                return
            obj = event["object"]
            with self._lock:
                if event["type"] == "DELETED" or not self._keep(obj):
                    self._objects.pop(_key(obj), None)
                else:
                    self._objects[_key(obj)] = obj


def _key(obj: Any) -> tuple[str, str]:
    return (obj.metadata.namespace or "", obj.metadata.name)
