"""An emulated Kubernetes API for the kubernetes runtime's tests: kmock's KubernetesEmulator
served over HTTP and reached through the official client.

What no emulator does, the test plays here, thinly:
- `Kubelet` gives objects the UIDs the API server would, makes a Deployment's ReplicaSet and
  pods and a Job's pod with owner references as the controllers do, marks rollouts done
  and Jobs complete (or gives pods the waiting reason a failing image would get), and
  collects the garbage of owners that are gone;
- `RenderingInstaller` stands in for `helm upgrade --install`: the real helm binary renders
  the chart, and the objects are created through the client (helm itself cannot talk to the
  emulator); each release's manifest is kept, as helm keeps it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import uuid
import zlib
from collections.abc import Iterator, Mapping
from typing import Any

import kmock
from kmock._internal import parsing
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from launchbay.domain.template import HelmSection
from launchbay.runtimes.kubernetes.client import LimitedApiClient
from launchbay.runtimes.kubernetes.helm import Helm

# Namespaces whose rollouts and Jobs the kubelet holds back, so that a test can see a
# space wait.
HELD: set[str] = set()
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
    """Plays the cluster's part the emulator cannot, thinly: the API server's UIDs, the
    controllers' ReplicaSets and Pods (with owner references, as they make them), rollouts
    and Job completion, the pod reasons a failing image gets, and garbage collection."""

    def __init__(self, url: str, *, prefix: str) -> None:
        self.api = api_client(url, rate=1000, burst=1000)
        self.core, self.apps = client.CoreV1Api(self.api), client.AppsV1Api(self.api)
        self.batch = client.BatchV1Api(self.api)
        self.prefix = prefix
        # What was handled already, so that a tick over many objects stays quick.
        self._done: set[tuple[Any, ...]] = set()
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

    def _ours(self, items: list[Any]) -> list[Any]:
        return [x for x in items if (x.metadata.namespace or "").startswith(self.prefix)]

    def tick(self) -> None:
        for ns in self.core.list_namespace().items:
            if ns.metadata.name.startswith(self.prefix) and not ns.metadata.uid:
                self.core.patch_namespace(
                    ns.metadata.name, {"metadata": {"uid": str(uuid.uuid4())}}
                )
        deployments = self._ours(self.apps.list_deployment_for_all_namespaces().items)
        jobs = self._ours(self.batch.list_job_for_all_namespaces().items)
        # One object that cannot be handled (its namespace going away) holds up no other.
        for kind, items in (("deployments", deployments), ("jobs", jobs)):
            for item in items:
                if not item.metadata.uid:
                    with contextlib.suppress(ApiException):
                        self._patch_uid(kind, item)
        for deployment in deployments:
            if deployment.metadata.uid:
                with contextlib.suppress(ApiException):
                    self._roll_out(deployment)
        for job in jobs:
            if job.metadata.uid and job.metadata.uid not in self._done:
                with contextlib.suppress(ApiException):
                    self._run_job(job)
                    if job.metadata.namespace not in HELD:
                        self._done.add(job.metadata.uid)
        self._collect_garbage()

    def _patch_uid(self, kind: str, item: Any) -> None:
        patch = {"metadata": {"uid": str(uuid.uuid4())}}
        name, namespace = item.metadata.name, item.metadata.namespace
        if kind == "deployments":
            self.apps.patch_namespaced_deployment(name, namespace, patch)
        else:
            self.batch.patch_namespaced_job(name, namespace, patch)

    def _roll_out(self, deployment: Any) -> None:
        """Its ReplicaSet and pods, owned as the controllers own them (made once for each
        size and image), and its status."""
        namespace, name = deployment.metadata.namespace, deployment.metadata.name
        wanted = deployment.spec.replicas if deployment.spec.replicas is not None else 1
        image = deployment.spec.template.spec.containers[0].image
        failing = _failing(image) is not None
        made = (deployment.metadata.uid, wanted, image)
        if made not in self._done:
            self._make_pods(deployment, namespace, name, wanted, image)
            self._done.add(made)
        if failing or namespace in HELD:
            return
        status = deployment.status
        if (
            status is None
            or (status.available_replicas or 0) != wanted
            or status.observed_generation is None
        ):
            self.apps.patch_namespaced_deployment_status(
                name,
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

    def _make_pods(
        self, deployment: Any, namespace: str, name: str, wanted: int, image: str
    ) -> None:
        rs_name = f"{name}-{zlib.crc32(image.encode()):08x}"  # a new image, a new ReplicaSet
        rs = self._ensure(
            "replicasets",
            namespace,
            rs_name,
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "metadata": {
                    "name": rs_name,
                    "namespace": namespace,
                    "uid": str(uuid.uuid4()),
                    "labels": _template_labels(deployment),
                    "ownerReferences": [_owner("apps/v1", "Deployment", deployment)],
                },
                "spec": {
                    "replicas": wanted,
                    "selector": deployment.spec.selector.to_dict()
                    if deployment.spec.selector
                    else {},
                    "template": self.api.sanitize_for_serialization(deployment.spec.template),
                },
            },
        )
        failing = _failing(image) is not None
        for i in range(max(wanted, 1 if failing else 0)):
            self._pod(namespace, f"{rs_name}-{i}", rs, "ReplicaSet", deployment, image)

    def _run_job(self, job: Any) -> None:
        """Its pod; done (Complete) unless its image fails or it already ended."""
        namespace, name = job.metadata.namespace, job.metadata.name
        image = job.spec.template.spec.containers[0].image
        self._pod(namespace, f"{name}-x7k2p", job, "Job", job, image)
        if (job.status and job.status.conditions) or namespace in HELD:
            return
        if _failing(image) is not None:
            condition = {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}
            status: dict[str, Any] = {"failed": 1, "conditions": [condition]}
        else:
            condition = {"type": "Complete", "status": "True"}
            status = {"succeeded": job.spec.completions or 1, "conditions": [condition]}
        self.batch.patch_namespaced_job_status(name, namespace, {"status": status})

    def _ensure(self, kind: str, namespace: str, name: str, body: dict[str, Any]) -> Any:
        read, create = {
            "replicasets": (
                self.apps.read_namespaced_replica_set,
                self.apps.create_namespaced_replica_set,
            ),
            "pods": (self.core.read_namespaced_pod, self.core.create_namespaced_pod),
        }[kind]
        try:
            return read(name, namespace)
        except ApiException:
            return create(namespace, body)

    def _pod(
        self, namespace: str, name: str, owner: Any, owner_kind: str, workload: Any, image: str
    ) -> None:
        api_version = "batch/v1" if owner_kind == "Job" else "apps/v1"
        labels = _template_labels(workload)
        try:
            self.core.read_namespaced_pod(name, namespace)
            return
        except ApiException:
            pass
        self.core.create_namespaced_pod(
            namespace,
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": name,
                    "namespace": namespace,
                    "uid": str(uuid.uuid4()),
                    "labels": labels,
                    "ownerReferences": [_owner(api_version, owner_kind, owner)],
                },
                "spec": {"containers": [{"name": "main", "image": image}]},
            },
        )
        self.core.patch_namespaced_pod_status(name, namespace, {"status": _pod_status(image)})

    def _collect_garbage(self) -> None:
        """What the garbage collector does: objects whose owner is gone go too."""
        alive = {
            x.metadata.uid
            for items in (
                self.apps.list_deployment_for_all_namespaces().items,
                self.batch.list_job_for_all_namespaces().items,
                self.apps.list_stateful_set_for_all_namespaces().items,
                self.apps.list_daemon_set_for_all_namespaces().items,
            )
            for x in items
            if x.metadata.uid
        }
        sets = self._ours(self.apps.list_replica_set_for_all_namespaces().items)
        for rs in sets:
            if not _owner_alive(rs, alive):
                with contextlib.suppress(ApiException):
                    self.apps.delete_namespaced_replica_set(rs.metadata.name, rs.metadata.namespace)
        alive |= {rs.metadata.uid for rs in sets if _owner_alive(rs, alive)}
        for pod in self._ours(self.core.list_pod_for_all_namespaces().items):
            if pod.metadata.owner_references and not _owner_alive(pod, alive):
                with contextlib.suppress(ApiException):
                    self.core.delete_namespaced_pod(pod.metadata.name, pod.metadata.namespace)


def _template_labels(workload: Any) -> dict[str, str]:
    meta = workload.spec.template.metadata
    return dict((meta.labels if meta else None) or {})


def _owner(api_version: str, kind: str, owner: Any) -> dict[str, Any]:
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": owner.metadata.name,
        "uid": owner.metadata.uid,
        "controller": True,
    }


def _owner_alive(obj: Any, alive: set[str]) -> bool:
    return any(o.uid in alive for o in obj.metadata.owner_references or [])


def _failing(image: str) -> str | None:
    """The failing test image an image reference names, whatever its tag."""
    name = image.split("@")[0]
    name = name.rsplit(":", 1)[0] if ":" in name.rsplit("/", 1)[-1] else name
    return name if name in (CRASHING_IMAGE, UNPULLABLE_IMAGE) else None


def _pod_status(image: str) -> dict[str, Any]:
    if _failing(image) is None:
        return {
            "phase": "Running",
            "containerStatuses": [
                {
                    "name": "main",
                    "image": image,
                    "imageID": "",
                    "ready": True,
                    "restartCount": 0,
                    "state": {"running": {}},
                }
            ],
        }
    crash = _failing(image) == CRASHING_IMAGE
    reason = "CrashLoopBackOff" if crash else "ImagePullBackOff"
    message = (
        "back-off restarting failed container" if crash else f'Back-off pulling image "{image}"'
    )
    return {
        "phase": "Running" if crash else "Pending",
        "containerStatuses": [
            {
                "name": "main",
                "image": image,
                "imageID": "",
                "ready": False,
                "restartCount": 3 if crash else 0,
                "state": {"waiting": {"reason": reason, "message": message}},
            }
        ],
    }


# What the stand-in installer can make, by kind: the official client's namespaced
# create, patch and delete of it.
KINDS = {
    "Deployment": ("AppsV1Api", "deployment"),
    "StatefulSet": ("AppsV1Api", "stateful_set"),
    "DaemonSet": ("AppsV1Api", "daemon_set"),
    "Job": ("BatchV1Api", "job"),
    "Service": ("CoreV1Api", "service"),
    "ConfigMap": ("CoreV1Api", "config_map"),
    "Secret": ("CoreV1Api", "secret"),
    "ServiceAccount": ("CoreV1Api", "service_account"),
    "PersistentVolumeClaim": ("CoreV1Api", "persistent_volume_claim"),
    "Ingress": ("NetworkingV1Api", "ingress"),
    "Role": ("RbacAuthorizationV1Api", "role"),
    "RoleBinding": ("RbacAuthorizationV1Api", "role_binding"),
}


def _call(api: Any, kind: str, verb: str) -> Any:
    group, resource = KINDS[kind]
    return getattr(getattr(client, group)(api), f"{verb}_namespaced_{resource}")


class RenderingInstaller:
    """`helm upgrade --install` for the emulator: the real helm renders the chart, the objects
    are created through the client (helm itself cannot talk to the emulator), hooks first,
    and the release's manifest (its objects but the hooks) is kept as helm keeps it, so that
    `manifest()` answers what `helm get manifest` would."""

    def __init__(self, url: str, helm: Helm) -> None:
        self.api = api_client(url, rate=1000, burst=1000)
        self.helm = helm
        self.installs = 0
        self.manifests: dict[tuple[str, str], list[dict[str, Any]]] = {}

    def template(
        self,
        *,
        release: str,
        namespace: str,
        section: HelmSection,
        values: Mapping[str, Any],
        service: str,
    ) -> list[dict[str, Any]]:
        return self.helm.template(
            release=release, namespace=namespace, section=section, values=values, service=service
        )

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
        rendered = self.template(
            release=release, namespace=namespace, section=section, values=values, service=service
        )
        hooks = [m for m in rendered if "helm.sh/hook" in (m["metadata"].get("annotations") or {})]
        kept = [m for m in rendered if m not in hooks]
        for manifest in [*hooks, *kept]:
            self.apply(namespace, manifest)
        self.manifests[(namespace, release)] = kept

    def apply(self, namespace: str, manifest: dict[str, Any]) -> None:
        kind, name = manifest["kind"], manifest["metadata"]["name"]
        manifest["metadata"]["namespace"] = namespace  # the API server's part
        if kind not in KINDS:
            return
        try:
            _call(self.api, kind, "create")(namespace, manifest)
        except ApiException as e:
            if e.status != 409:
                raise
            _call(self.api, kind, "patch")(name, namespace, manifest)

    def manifest(self, *, release: str, namespace: str) -> list[dict[str, Any]]:
        return list(self.manifests.get((namespace, release), []))

    def uninstall(self, *, release: str, namespace: str, service: str) -> None:
        for manifest in self.manifests.pop((namespace, release), []):
            if manifest["kind"] in KINDS:
                with contextlib.suppress(ApiException):
                    _call(self.api, manifest["kind"], "delete")(
                        manifest["metadata"]["name"], namespace
                    )

    def releases(self, namespace: str) -> list[str]:
        return list(reversed([r for (ns, r) in self.manifests if ns == namespace]))

    def close(self) -> None:
        self.api.close()
