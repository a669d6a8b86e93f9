"""Kubernetes benchmark: API calls and time per status refresh of every space, for 10, 100
and 1,000 spaces against kmock's emulated API server. The runtime reads status from its
watch caches, so the calls per refresh must not grow with the number of spaces; a naive
refresh (one read per space) is measured alongside for comparison.

    .venv/bin/python -m bench.kubernetes
"""

from __future__ import annotations

import json
import statistics
import time
from typing import Any

from kubernetes import client

from launchbay.domain.names import ServiceName, SpaceName
from launchbay.domain.spec import ResolvedService
from launchbay.domain.template import Service
from launchbay.runtimes.base import SpaceRef
from launchbay.runtimes.kubernetes.runtime import ClusterSettings, KubernetesRuntime
from tests.kube_emulator import api_client, emulated_cluster
from tests.support import wait_until

SIZES = (10, 100, 1000)
SERVICE = ResolvedService(
    name=ServiceName("web"),
    spec=Service.model_validate({"helm": {"chart": "unused", "port": 8080}}),
)


def add_spaces(apps: Any, prefix: str, count: int) -> None:
    """One ready Deployment per space. (Status is what the probe reads, so no Namespace objects
    are made: the emulator slows down with every object it holds.)"""
    labels = {"app.kubernetes.io/instance": "web"}
    for i in range(count):
        namespace = f"{prefix}s{i}"
        apps.create_namespaced_deployment(
            namespace,
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {
                    "name": "web",
                    "namespace": namespace,
                    "labels": labels,
                    "generation": 1,
                },
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": labels},
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {"containers": [{"name": "c", "image": "x"}]},
                    },
                },
                "status": {
                    "observedGeneration": 1,
                    "replicas": 1,
                    "updatedReplicas": 1,
                    "readyReplicas": 1,
                    "availableReplicas": 1,
                },
            },
        )


def refresh(runtime: KubernetesRuntime, count: int) -> tuple[int, float, int]:
    """One status refresh of every space: (API calls, seconds, healthy spaces)."""
    before = runtime.api.calls
    start = time.perf_counter()
    healthy = 0
    for i in range(count):
        ref = SpaceRef(name=SpaceName(f"s{i}"), owner="bench", template="bench")
        healthy += bool(runtime.observe(ref, [SERVICE])[SERVICE.name].healthy)
    return runtime.api.calls - before, time.perf_counter() - start, healthy


def naive_refresh(apps: Any, prefix: str, count: int) -> float:
    start = time.perf_counter()
    for i in range(count):
        apps.read_namespaced_deployment("web", f"{prefix}s{i}")
    return time.perf_counter() - start


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default=",".join(str(n) for n in SIZES))
    sizes = [int(n) for n in parser.parse_args().sizes.split(",")]
    results = []
    with emulated_cluster() as url:
        setup = api_client(url, rate=100000, burst=100000)
        apps = client.AppsV1Api(setup)
        for count in sizes:
            add_spaces(apps, f"b{count}-", count)
        for count in sizes:
            prefix = f"b{count}-"
            runtime = KubernetesRuntime(
                api_client(url, rate=100000, burst=100000),
                installer=None,  # type: ignore[arg-type]
                settings=ClusterSettings(namespace_prefix=prefix),
            )
            wait_until(
                lambda r=runtime, c=count: refresh(r, c)[2] == c,
                timeout=300,
                interval=0.5,
                what="synced",
            )
            rounds = [refresh(runtime, count) for _ in range(3)]
            naive = statistics.median(naive_refresh(apps, prefix, count) for _ in range(3))
            results.append(
                {
                    "spaces": count,
                    "api_calls_per_refresh": max(r[0] for r in rounds),
                    "refresh_s": round(statistics.median(r[1] for r in rounds), 4),
                    "naive_api_calls_per_refresh": count,
                    "naive_refresh_s": round(naive, 4),
                }
            )
            runtime.close()
    print(
        json.dumps(
            {
                "benchmark": "kubernetes",
                "emulated": "kmock KubernetesEmulator",
                "refreshes": results,
                "calls_grow_with_spaces": results[-1]["api_calls_per_refresh"]
                > results[0]["api_calls_per_refresh"],
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
