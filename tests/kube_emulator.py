"""An emulated Kubernetes API for the kubernetes runtime's tests: kmock's KubernetesEmulator
served over HTTP and reached through the official client.

What no emulator does, the test plays here, thinly:
- `Kubelet` marks Deployments rolled out (or gives their pods the waiting reason a failing
  image would get) and gives namespaces a UID, as the API server would;
- `RenderingInstaller` stands in for `helm upgrade --install`: the real helm binary renders
  the chart, and the objects are created through the client (helm itself cannot talk to the
  emulator); releases are tracked by the app.kubernetes.io/instance label.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

import kmock
from kmock._internal import parsing
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from launchbay.domain.template import HelmSection
from launchbay.runtimes.kubernetes.client import LimitedApiClient
from launchbay.runtimes.kubernetes.helm import Helm

CRASHING_IMAGE = "launchbay-test/crashes"
UNPULLABLE_IMAGE = "launchbay-test/never-pulls"
_original_parse_path = parsing.parse_path


def _parse_path(path: str) -> parsing.ParsedPath:
    """kmock 0.8 reads /api/v1/namespaces[/NAME] as a namespaced prefix and answers 500."""
    parts = path.strip("/").split("/")
    if parts[:1] == ["api"] and len(parts) in (3, 4, 5) and parts[2] == "namespaces":
        name = parts[3] if len(parts) >= 4 else None
        sub = parts[4] if len(parts) == 5 and parts[4] in ("status", "finalize") else None
        if len(parts) < 5 or sub:
            return parsing.ParsedPath("", parts[1], "namespaces", None, name, sub)
    return _original_parse_path(path)


parsing.parse_path = _parse_path


@contextlib.contextmanager
def emulated_cluster() -> Iterator[str]:
    """The emulator's URL, served from a background thread for the duration."""
    ready, stop, box = threading.Event(), threading.Event(), {}

    def serve() -> None:
        try:
            asyncio.run(main())
        except BaseException as e:  # reported to the waiting test below
            box["error"] = e
            ready.set()

    async def main() -> None:
        async with kmock.KubernetesEmulator() as emulator, kmock.Server(emulator) as server:
            emulator.resources.load_bundled()
            box["url"] = str(server.url)
            ready.set()
            while not stop.is_set():
                await asyncio.sleep(0.05)

    thread = threading.Thread(target=serve, name="kmock", daemon=True)
    thread.start()
    if not ready.wait(30) or "error" in box:
        raise RuntimeError(f"the Kubernetes emulator did not start: {box.get('error')!r}")
    try:
        yield box["url"]
    finally:
        stop.set()
        thread.join(timeout=10)


def api_client(url: str, **limits: Any) -> LimitedApiClient:
    return LimitedApiClient(client.Configuration(host=url), **limits)


class Kubelet:
    """Plays the cluster's part the emulator cannot: rollouts, pod reasons, namespace UIDs."""

    def __init__(self, url: str, *, prefix: str) -> None:
        self.api = api_client(url, rate=1000, burst=1000)
        self.core, self.apps = client.CoreV1Api(self.api), client.AppsV1Api(self.api)
        self.prefix = prefix
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kubelet", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.api.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(
                Exception
            ):  # the emulator restarting streams, a race: next tick
                self.tick()
            self._stop.wait(0.1)

    def tick(self) -> None:
        for ns in self.core.list_namespace().items:
            if ns.metadata.name.startswith(self.prefix) and not ns.metadata.uid:
                self.core.patch_namespace(
                    ns.metadata.name, {"metadata": {"uid": str(uuid.uuid4())}}
                )
        for deployment in self.apps.list_deployment_for_all_namespaces().items:
            namespace = deployment.metadata.namespace or ""
            if not namespace.startswith(self.prefix):
                continue
            image = deployment.spec.template.spec.containers[0].image
            if image in (CRASHING_IMAGE, UNPULLABLE_IMAGE):
                self._failing_pod(deployment, image)
                continue
            wanted = deployment.spec.replicas or 0
            status = deployment.status
            if (
                status is None
                or (status.available_replicas or 0) != wanted
                or status.observed_generation is None
            ):
                self.apps.patch_namespaced_deployment_status(
                    deployment.metadata.name,
                    namespace,
                    {
                        "status": {
                            "observedGeneration": deployment.metadata.generation or 1,
                            "replicas": wanted,
                            "readyReplicas": wanted,
                            "updatedReplicas": wanted,
                            "availableReplicas": wanted,
                        }
                    },
                )

    def _failing_pod(self, deployment: Any, image: str) -> None:
        namespace, name = deployment.metadata.namespace, f"{deployment.metadata.name}-pod"
        labels = dict(deployment.spec.template.metadata.labels or {})
        reason = "CrashLoopBackOff" if image == CRASHING_IMAGE else "ImagePullBackOff"
        message = (
            "back-off restarting failed container"
            if reason == "CrashLoopBackOff"
            else f'Back-off pulling image "{image}"'
        )
        status = {
            "phase": "Pending" if reason == "ImagePullBackOff" else "Running",
            "containerStatuses": [
                {
                    "name": "main",
                    "image": image,
                    "imageID": "",
                    "ready": False,
                    "restartCount": 3 if reason == "CrashLoopBackOff" else 0,
                    "state": {"waiting": {"reason": reason, "message": message}},
                }
            ],
        }
        try:
            self.core.read_namespaced_pod(name, namespace)
        except ApiException:
            self.core.create_namespaced_pod(
                namespace,
                {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {"name": name, "namespace": namespace, "labels": labels},
                    "spec": {"containers": [{"name": "main", "image": image}]},
                },
            )
            self.core.patch_namespaced_pod_status(name, namespace, {"status": status})


class RenderingInstaller:
    """`helm upgrade --install` for the emulator: rendered by the real helm, created via the client."""

    def __init__(self, url: str, helm: Helm) -> None:
        self.api = api_client(url, rate=1000, burst=1000)
        self.core, self.apps = client.CoreV1Api(self.api), client.AppsV1Api(self.api)
        self.helm = helm
        self.installs = 0

    def install(
        self,
        *,
        release: str,
        namespace: str,
        section: HelmSection,
        values: Mapping[str, Any],
        service: str,
    ) -> None:
        self.installs += 1
        for manifest in self.helm.template(
            release=release, namespace=namespace, section=section, values=values, service=service
        ):
            kind, name = manifest["kind"], manifest["metadata"]["name"]
            manifest["metadata"]["namespace"] = namespace  # the API server's part
            create, patch = {
                "Deployment": (
                    self.apps.create_namespaced_deployment,
                    self.apps.patch_namespaced_deployment,
                ),
                "Service": (
                    self.core.create_namespaced_service,
                    self.core.patch_namespaced_service,
                ),
            }.get(kind, (None, None))
            if create is None:
                continue
            try:
                create(namespace, manifest)
            except ApiException as e:
                if e.status != 409:
                    raise
                patch(name, namespace, manifest)

    def uninstall(self, *, release: str, namespace: str, service: str) -> None:
        for item in self.apps.list_namespaced_deployment(namespace).items:
            if (item.metadata.labels or {}).get("app.kubernetes.io/instance") == release:
                self.apps.delete_namespaced_deployment(item.metadata.name, namespace)
        for item in self.core.list_namespaced_service(namespace).items:
            if (item.metadata.labels or {}).get("app.kubernetes.io/instance") == release:
                self.core.delete_namespaced_service(item.metadata.name, namespace)
        for item in self.core.list_namespaced_pod(namespace).items:
            if (item.metadata.labels or {}).get("app.kubernetes.io/instance") == release:
                self.core.delete_namespaced_pod(item.metadata.name, namespace)

    def releases(self, namespace: str) -> list[str]:
        found = []
        for item in self.apps.list_namespaced_deployment(namespace).items:
            if item.metadata.namespace == namespace:
                release = (item.metadata.labels or {}).get("app.kubernetes.io/instance")
                if release and release not in found:
                    found.append(release)
        return list(reversed(found))

    def close(self) -> None:
        self.api.close()
