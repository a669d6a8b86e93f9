"""The engine with the kubernetes runtime, against kmock's emulated API server.

Emulated: the API server (kmock), rollouts and pod reasons (the test's kubelet), and
`helm install` (charts rendered by the real helm, objects created through the client).
Real: the official client, the engine, the store, the runtime's code."""

from __future__ import annotations

import http.server
import json
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from launchbay.domain.auth import Actor
from launchbay.domain.errors import Invalid, LaunchbayError, Refused
from launchbay.domain.names import ServiceName, SpaceName
from launchbay.domain.spec import ResolvedService
from launchbay.domain.template import Service
from launchbay.engine.assembly import Launchbay
from launchbay.engine.catalog import TemplateCatalog
from launchbay.engine.engine import Engine, EngineSettings
from launchbay.engine.loops import reap_once, reconcile_once
from launchbay.engine.queries import Queries
from launchbay.engine.requests import CreateSpace, Requests
from launchbay.runtimes.base import SpaceRef
from launchbay.runtimes.kubernetes.client import LimitedApiClient
from launchbay.runtimes.kubernetes.runtime import ClusterSettings, KubernetesRuntime
from launchbay.store.db import Store, sqlite_url
from launchbay.store.queries import SpaceFilter
from tests.kube_emulator import (
    CRASHING_IMAGE,
    HELD,
    UNPULLABLE_IMAGE,
    RenderingInstaller,
    api_client,
)
from tests.support import ROOT, wait_until

ANN = Actor("ann")


@pytest.fixture
def cluster(kube_cluster, tmp_path: Path, templates: Path):
    url, helm = kube_cluster
    prefix = f"lbt-k{abs(hash(tmp_path)) % 10**5}-"
    store = Store(sqlite_url(tmp_path))
    store.migrate()
    installer = RenderingInstaller(url, helm)
    runtime = KubernetesRuntime(
        api_client(url),
        installer,
        ClusterSettings(
            namespace_prefix=prefix,
            delete_timeout=10,
            service_account="launchbay",
            own_namespace="launchbay-system",
        ),
    )
    engines: list[Engine] = []

    def engine(**settings) -> Engine:
        made = Engine(
            store=store,
            runtimes={"kubernetes": runtime},
            catalog=TemplateCatalog(templates),
            settings=EngineSettings(**({"min_ttl": timedelta(seconds=1)} | settings)),
        )
        Launchbay.of(made)  # every job kind; the test drives the loops pass by pass
        made.start()
        engines.append(made)
        return made

    core = client.CoreV1Api(api_client(url, rate=1000, burst=1000))
    yield engine, core, prefix, runtime
    for made in engines:
        made.stop()
    installer.close()
    store.close()


def create(engine: Engine, name: str, **params: str) -> None:
    Requests(engine).create(
        CreateSpace(name=name, template="demo", runtime="kubernetes", ttl="10s", params=params),
        actor=ANN,
    )


def phase(engine: Engine, name: str, phases: set[str]) -> str:
    return wait_until(
        lambda: (p := Queries(engine).space(name).phase) in phases and p,
        timeout=60,
        what=f"{name} in {phases}",
    )


def test_emulated_space_gets_a_labelled_namespace_with_its_policy_and_becomes_ready(cluster):
    engine, core, prefix, _ = cluster
    make = engine()
    create(make, "team-1")
    assert phase(make, "team-1", {"ready", "failed"}) == "ready", (
        Queries(make).space("team-1").reason
    )
    ns = core.read_namespace(f"{prefix}team-1")
    labels, annotations = ns.metadata.labels, ns.metadata.annotations
    assert labels["app.kubernetes.io/managed-by"] == "launchbay"
    assert (
        labels["launchbay.dev/space"],
        labels["launchbay.dev/owner"],
        labels["launchbay.dev/template"],
    ) == ("team-1", "ann", "demo")
    assert labels["pod-security.kubernetes.io/enforce"] == "baseline"
    assert annotations["janitor/expires"] == annotations["launchbay.dev/expires"] != ""
    assert [
        q.metadata.name for q in core.list_namespaced_resource_quota(ns.metadata.name).items
    ] == ["launchbay-quota"]
    assert [x.metadata.name for x in core.list_namespaced_limit_range(ns.metadata.name).items] == [
        "launchbay-limits"
    ]
    policies = (
        client.NetworkingV1Api(core.api_client)
        .list_namespaced_network_policy(ns.metadata.name)
        .items
    )
    assert [p.metadata.name for p in policies] == ["launchbay-isolate"]
    rbac = client.RbacAuthorizationV1Api(core.api_client)
    (binding,) = rbac.list_namespaced_role_binding(ns.metadata.name).items
    assert (binding.role_ref.kind, binding.role_ref.name) == ("ClusterRole", "admin")
    assert [(x.name, x.namespace) for x in binding.subjects] == [("launchbay", "launchbay-system")]
    kv = next(s for s in Queries(make).space("team-1").services if s.name == "kv")
    assert kv.status == "ready" and "1/1 available" in kv.detail


def test_emulated_image_that_never_pulls_fails_the_space_naming_the_image(cluster):
    engine, *_ = cluster
    make = engine()
    create(make, "pull-1", image=UNPULLABLE_IMAGE)
    assert phase(make, "pull-1", {"ready", "failed"}) == "failed"
    assert f"ImagePullBackOff (image {UNPULLABLE_IMAGE})" in Queries(make).space("pull-1").reason


def test_emulated_sleep_scales_to_zero_and_wake_restores_the_replicas(cluster):
    engine, core, prefix, _ = cluster
    make = engine()
    create(make, "nap-1")
    phase(make, "nap-1", {"ready"})
    apps = client.AppsV1Api(core.api_client)
    Requests(make).sleep("nap-1", actor=ANN)
    phase(make, "nap-1", {"sleeping"})
    scaled = apps.list_namespaced_deployment(f"{prefix}nap-1").items
    assert {d.spec.replicas for d in scaled} == {0}
    assert {d.metadata.annotations["launchbay.dev/replicas"] for d in scaled} == {"1"}
    Requests(make).wake("nap-1", actor=ANN)
    phase(make, "nap-1", {"ready"})
    assert {d.spec.replicas for d in apps.list_namespaced_deployment(f"{prefix}nap-1").items} == {1}


def test_emulated_delete_uninstalls_and_removes_the_namespace(cluster):
    engine, core, prefix, _ = cluster
    make = engine()
    create(make, "gone-1")
    phase(make, "gone-1", {"ready"})
    Requests(make).delete("gone-1", actor=ANN)
    phase(make, "gone-1", {"deleted"})
    assert f"{prefix}gone-1" not in [n.metadata.name for n in core.list_namespace().items]


def test_emulated_decoy_namespaces_survive_the_reaper_and_the_orphan_sweep(cluster):
    engine, core, prefix, _runtime = cluster
    make = engine(orphan_grace=1.0)
    create(make, "real-1")
    phase(make, "real-1", {"ready"})
    managed = {"app.kubernetes.io/managed-by": "launchbay"}
    decoys = {
        f"{prefix}unlabelled": {},  # our prefix, no labels
        f"{prefix}nolabel-space": managed,  # managed, but names no space
        "kube-lb-decoy": {**managed, "launchbay.dev/space": "kube-lb-decoy"},  # protected by name
        # a space of a server from before installations, not this one's: never adopted
        f"{prefix}elsewhere": {**managed, "launchbay.dev/space": "elsewhere"},
    }
    for name, labels in decoys.items():
        core.create_namespace({"metadata": {"name": name, "labels": labels}})
    ghost = f"{prefix}ghost"
    ours = {**managed, "launchbay.dev/space": "ghost", "launchbay.dev/installation": ""}
    core.create_namespace({"metadata": {"name": ghost, "labels": ours}})
    make.clock = lambda: (
        Queries(make).space("real-1").expires_at.replace(year=2100)
    )  # everything has expired
    reap_once(make)
    reconcile_once(make)
    names = [n.metadata.name for n in core.list_namespace().items]
    assert ghost in names  # labelled, no record: kept during the grace period
    wait_until(
        lambda: (
            reconcile_once(make)
            or ghost not in [n.metadata.name for n in core.list_namespace().items]
        ),
        timeout=20,
        what="the orphan removed after its grace period",
    )
    names = [n.metadata.name for n in core.list_namespace().items]
    for decoy in decoys:
        assert decoy in names, decoy
    phase(make, "real-1", {"deleted"})  # the reaper did delete the expired space itself


def test_emulated_namespace_names_over_63_characters_are_refused_at_create(
    kube_cluster, tmp_path, templates
):
    url, helm = kube_cluster
    store = Store(sqlite_url(tmp_path))
    store.migrate()
    runtime = KubernetesRuntime(
        api_client(url),
        RenderingInstaller(url, helm),
        ClusterSettings(namespace_prefix="a-very-long-namespace-prefix-for-spaces-"),
    )
    made = Engine(
        store=store,
        runtimes={"kubernetes": runtime},
        catalog=TemplateCatalog(templates),
        settings=EngineSettings(),
    )
    try:
        with pytest.raises(Invalid, match="Kubernetes allows 63"):
            Requests(made).create(
                CreateSpace(name="x" * 30, template="demo", runtime="kubernetes"), actor=ANN
            )
        assert Queries(made).spaces(SpaceFilter(), limit=10, before_id=None)[1] == 0
    finally:
        made.stop()
        store.close()


def test_no_rights_in_the_cluster_is_a_clear_error_naming_the_verb():
    """A real HTTP server that answers 403 to everything, as an API server does without RBAC."""

    class Forbidden(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(403)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"kind": "Status", "code": 403, "reason": "Forbidden"}')

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Forbidden)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        api = api_client(f"http://127.0.0.1:{server.server_address[1]}")
        runtime = KubernetesRuntime(
            api, RenderingInstaller.__new__(RenderingInstaller), ClusterSettings()
        )
        # Refused, not unavailable: waiting will not help until someone grants the right.
        with pytest.raises(Refused, match="no rights to list namespaces in the cluster"):
            runtime.check()
        with pytest.raises(Refused, match="no rights to list namespaces"):
            runtime.spaces()
        api.close()
    finally:
        server.shutdown()
        server.server_close()


def test_a_server_given_an_unreadable_kubeconfig_refuses_to_start_saying_why(tmp_path, templates):
    from tests.support import ServerProcess

    s = ServerProcess(home=tmp_path / "k", templates=templates)
    s.home.mkdir()
    result = s.start_refused("--kubeconfig", str(tmp_path / "missing-kubeconfig"))
    assert result.returncode == 2
    assert "cannot load the Kubernetes configuration" in result.stderr


def test_emulated_warning_events_of_the_namespace_enter_the_timeline_once(cluster):
    engine, core, prefix, _ = cluster
    make = engine()
    create(make, "warn-1")
    phase(make, "warn-1", {"ready"})
    namespace = f"{prefix}warn-1"
    for name, kind in (("w1", "Warning"), ("n1", "Normal")):
        core.create_namespaced_event(
            namespace,
            {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": name, "namespace": namespace},
                "involvedObject": {"kind": "Pod", "name": "api-123", "namespace": namespace},
                "type": kind,
                "reason": "FailedScheduling" if kind == "Warning" else "Pulled",
                "message": "0/3 nodes are available: insufficient memory"
                if kind == "Warning"
                else "pulled",
            },
        )

    def warnings() -> list:
        return [e for e in Queries(make).events("warn-1") if e.kind == "warning"]

    wait_until(lambda: reconcile_once(make) or warnings(), timeout=20, what="the warning recorded")
    reconcile_once(make)
    reconcile_once(make)
    (warning,) = warnings()
    assert (
        warning.message
        == "FailedScheduling: Pod/api-123: 0/3 nodes are available: insufficient memory"
    )
    assert warning.actor == "kubernetes"


def test_emulated_statefulsets_daemonsets_and_jobs_report_their_own_readiness(cluster):
    from launchbay.domain.names import ServiceName, SpaceName
    from launchbay.domain.spec import ResolvedService
    from launchbay.domain.template import Service
    from launchbay.runtimes.base import SpaceRef

    _, core, prefix, runtime = cluster
    namespace = f"{prefix}wl-1"
    core.create_namespace({"metadata": {"name": namespace}})
    apps, batch = client.AppsV1Api(core.api_client), client.BatchV1Api(core.api_client)

    def meta(name: str) -> dict:
        return {
            "name": name,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/instance": name},
            "generation": 1,
        }

    pod = {
        "metadata": {"labels": {"a": "b"}},
        "spec": {"containers": [{"name": "c", "image": "x"}]},
    }
    selector = {"matchLabels": {"a": "b"}}
    apps.create_namespaced_stateful_set(
        namespace,
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": meta("db"),
            "spec": {"replicas": 2, "serviceName": "db", "selector": selector, "template": pod},
            "status": {
                "observedGeneration": 1,
                "replicas": 2,
                "readyReplicas": 1,
                "updatedReplicas": 2,
            },
        },
    )
    apps.create_namespaced_daemon_set(
        namespace,
        {
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "metadata": meta("agent"),
            "spec": {"selector": selector, "template": pod},
            "status": {
                "observedGeneration": 1,
                "desiredNumberScheduled": 3,
                "numberReady": 3,
                "updatedNumberScheduled": 3,
                "currentNumberScheduled": 3,
                "numberMisscheduled": 0,
            },
        },
    )
    batch.create_namespaced_job(
        namespace,
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": meta("migrate"),
            "spec": {"template": {**pod, "spec": {**pod["spec"], "restartPolicy": "Never"}}},
            "status": {
                "conditions": [
                    {
                        "type": "Failed",
                        "status": "True",
                        "reason": "BackoffLimitExceeded",
                        "message": "Job has reached the specified backoff limit",
                    }
                ]
            },
        },
    )
    ref = SpaceRef(name=SpaceName("wl-1"), owner="ann", template="t")
    for kind, name in (("StatefulSet", "db"), ("DaemonSet", "agent"), ("Job", "migrate")):
        runtime.installer.manifests[(namespace, name)] = [
            {"kind": kind, "metadata": {"name": name}}
        ]

    def seen(name: str):
        service = ResolvedService(
            name=ServiceName(name), spec=Service.model_validate({"helm": {"chart": "x"}})
        )
        return runtime.probe(ref, service)

    db = wait_until(
        lambda: (o := seen("db")).detail != "waiting for StatefulSet 'db'" and o,
        timeout=20,
        what="db",
    )
    assert db.running and db.healthy is False and "statefulset 1/2 ready" in db.detail
    apps.patch_namespaced_stateful_set_status("db", namespace, {"status": {"readyReplicas": 2}})
    wait_until(lambda: seen("db").healthy, timeout=20, what="db ready")
    agent = seen("agent")
    assert agent.running and agent.healthy and "daemonset 3/3 ready" in agent.detail
    migrate = seen("migrate")
    assert not migrate.running and "job migrate failed: BackoffLimitExceeded" in migrate.detail
    runtime.sleep(ref, [ServiceName("db")])
    assert apps.read_namespaced_stateful_set("db", namespace).spec.replicas == 0
    wait_until(lambda: seen("db").detail == "scaled to zero", timeout=20, what="db asleep")


# -- fault injection: one test per error class, at the client boundary ----------------------

REASONS = {403: "Forbidden", 404: "Not Found", 409: "Conflict", 503: "Service Unavailable"}


def failing(real, status: int, times: int):
    """`real`, except that its first `times` calls get the API's `status` answer."""
    left = [times]

    def call(*args, **kwargs):
        if left[0] > 0:
            left[0] -= 1
            error = ApiException(status=status, reason=REASONS[status])
            error.headers = {"Retry-After": "0"}
            error.body = json.dumps({"kind": "Status", "message": f"injected {status}"})
            raise error
        return real(*args, **kwargs)

    return call


def kinds(engine: Engine, name: str) -> list[str]:
    return [e.kind for e in Queries(engine).events(name)]


def test_emulated_unavailable_api_is_retried_with_backoff_and_the_space_comes_up(
    cluster, monkeypatch
):
    engine, _, _, runtime = cluster
    make = engine()
    monkeypatch.setattr(
        runtime.core, "create_namespace", failing(runtime.core.create_namespace, 503, 2)
    )
    create(make, "flaky-1")
    assert phase(make, "flaky-1", {"ready", "failed"}) == "ready"
    retries = [e.message for e in Queries(make).events("flaky-1") if e.kind == "retry"]
    assert len(retries) == 2
    assert "the Kubernetes API did not create namespaces: 503 Service Unavailable" in retries[0]


def test_emulated_refused_rights_fail_the_space_at_once_saying_which(cluster, monkeypatch):
    engine, _, _, runtime = cluster
    make = engine()
    monkeypatch.setattr(
        runtime.core, "create_namespace", failing(runtime.core.create_namespace, 403, 99)
    )
    create(make, "denied-1")
    assert phase(make, "denied-1", {"ready", "failed"}) == "failed"
    reason = Queries(make).space("denied-1").reason
    assert "no rights to create namespaces in the cluster (403 Forbidden: injected 403)" in reason
    assert "retry" not in kinds(make, "denied-1")


def sleep_with_patch_failing(cluster, monkeypatch, name: str, *, status: int, times: int):
    """A ready space put to sleep while patching its Deployments gets `status`."""
    engine, _, _, runtime = cluster
    make = engine()
    create(make, name)
    phase(make, name, {"ready"})
    monkeypatch.setattr(
        runtime.apps,
        "patch_namespaced_deployment",
        failing(runtime.apps.patch_namespaced_deployment, status, times),
    )
    Requests(make).sleep(name, actor=ANN)
    return make


def test_emulated_not_found_fails_the_job_without_retry_and_says_what_was_missing(
    cluster, monkeypatch
):
    make = sleep_with_patch_failing(cluster, monkeypatch, "vanish-1", status=404, times=99)
    failed = wait_until(
        lambda: [e for e in Queries(make).events("vanish-1") if e.kind == "job-failed"],
        timeout=30,
        what="the sleep job failed",
    )
    assert "sleep failed: the cluster has no such deployments to patch: 404" in failed[0].message
    assert "retry" not in kinds(make, "vanish-1")
    assert Queries(make).space("vanish-1").phase == "ready"  # nothing was put to sleep


def test_emulated_conflict_is_retried_and_the_change_goes_through(cluster, monkeypatch):
    make = sleep_with_patch_failing(cluster, monkeypatch, "race-1", status=409, times=1)
    assert phase(make, "race-1", {"sleeping"}) == "sleeping"
    retries = [e.message for e in Queries(make).events("race-1") if e.kind == "retry"]
    assert len(retries) == 1 and "it changed meanwhile: 409 Conflict" in retries[0]


# -- real charts as they are (tests/material/charts) ----------------------------------------

CHARTS = ROOT / "tests" / "material" / "charts"


def chart_template(templates: Path, name: str, services: str) -> None:
    (templates / f"{name}.yaml").write_text(
        f"name: {name}\nttl: {{default: 1h, max: 2h}}\nservices:\n{services}"
    )


def start(make: Engine, name: str, template: str, **sets: str) -> str:
    Requests(make).create(
        CreateSpace(name=name, template=template, runtime="kubernetes", sets=sets), actor=ANN
    )
    return phase(make, name, {"ready", "failed"})


def test_emulated_a_chart_whose_objects_have_their_own_names_and_labels_runs_as_it_is(
    cluster, templates
):
    engine, _, prefix, runtime = cluster
    chart_template(
        templates,
        "shop",
        f"""\
  front:
    endpoints: [{{name: home, path: /}}]
    overridable: {{values: ["ingress.*", "image.*", "migrate.*"]}}
    helm:
      chart: {CHARTS / "web"}
      values: {{ingress: {{host: "shop.${{space.domain}}"}}}}
""",
    )
    make = engine()
    assert start(make, "shop-1", "shop") == "ready", Queries(make).space("shop-1").reason
    front = Queries(make).space("shop-1").service("front")
    assert front is not None and "1/1 available" in front.detail
    assert front.endpoints == {"home": "http://shop.shop-1.localhost/"}
    # Its pods are found by their owners, not by a label the chart does not set.
    runtime.sleep(
        SpaceRef(name=SpaceName("shop-1"), owner="ann", template="shop"), [ServiceName("front")]
    )
    apps = client.AppsV1Api(runtime.api)
    assert apps.read_namespaced_deployment("front-web", f"{prefix}shop-1").spec.replicas == 0

    assert start(make, "shop-2", "shop", **{"front.values.ingress.enabled": "false"}) == "ready"
    hint = Queries(make).space("shop-2").service("front").endpoints["home"]
    assert hint == f"kubectl -n {prefix}shop-2 port-forward svc/front-web 80:80"

    # A pre-install hook runs as helm runs it, and is not one of the release's objects.
    assert start(make, "shop-4", "shop", **{"front.values.migrate.enabled": "true"}) == "ready"
    jobs = client.BatchV1Api(runtime.api).list_namespaced_job(f"{prefix}shop-4").items
    assert [j.metadata.name for j in jobs] == ["front-web-migrate"]

    crashing = {"front.values.image.repository": CRASHING_IMAGE, "front.values.image.tag": "1"}
    assert start(make, "shop-3", "shop", **crashing) == "failed"
    reason = Queries(make).space("shop-3").reason
    assert "CrashLoopBackOff" in reason and CRASHING_IMAGE in reason
    never = {"front.values.image.repository": UNPULLABLE_IMAGE, "front.values.image.tag": "2"}
    assert start(make, "shop-5", "shop", **never) == "failed"
    reason = Queries(make).space("shop-5").reason
    assert f"ImagePullBackOff (image {UNPULLABLE_IMAGE}:2)" in reason


def test_emulated_a_chart_with_cluster_wide_objects_is_refused_before_install_naming_them(
    cluster, templates
):
    engine, _, _, runtime = cluster
    chart_template(
        templates,
        "observe",
        f"""\
  agent:
    overridable: {{values: ["rbac.create"]}}
    helm: {{chart: {CHARTS / "observer"}}}
""",
    )
    make = engine()
    installs = runtime.installer.installs
    for name in ("obs-1", "obs-2"):  # two spaces of one template: each refused, whole
        assert start(make, name, "observe") == "failed"
        reason = Queries(make).space(name).reason
        assert "ClusterRole 'agent-observer' is cluster-wide" in reason
        assert "ClusterRoleBinding 'agent-observer' is cluster-wide" in reason
    assert runtime.installer.installs == installs  # nothing was installed
    assert start(make, "obs-3", "observe", **{"agent.values.rbac.create": "false"}) == "ready"


def test_emulated_a_release_of_only_a_job_is_completed_when_it_completes(cluster, templates):
    engine, _, prefix, _ = cluster
    chart_template(
        templates,
        "seeded",
        f"""\
  seed:
    helm: {{chart: {CHARTS / "seed"}}}
  web:
    depends_on: [seed]
    helm: {{chart: {CHARTS / "web"}, values: {{ingress: {{enabled: false}}}}}}
""",
    )
    make = engine()
    HELD.add(f"{prefix}seeded-1")
    try:
        Requests(make).create(
            CreateSpace(name="seeded-1", template="seeded", runtime="kubernetes"), actor=ANN
        )
        wait_until(
            lambda: (
                (s := Queries(make).space("seeded-1").service("seed")) and s.status == "starting"
            ),
            timeout=30,
            what="seed running",
        )
        time.sleep(2)  # the Job has not completed: web, which needs it, has not started
        space = Queries(make).space("seeded-1")
        assert space.phase == "provisioning" and space.service("web").status == "pending"
    finally:
        HELD.discard(f"{prefix}seeded-1")
    assert phase(make, "seeded-1", {"ready", "failed"}) == "ready"
    seed = Queries(make).space("seeded-1").service("seed")
    assert seed is not None and seed.status == "completed" and seed.detail == "jobs complete"


def test_emulated_a_charts_space_is_ready_only_once_every_workload_is(cluster, templates):
    engine, _, prefix, runtime = cluster
    chart_template(
        templates,
        "twin",
        f"""\
  web:
    helm: {{chart: {CHARTS / "web"}, values: {{replicaCount: 2}}}}
  agent:
    helm: {{chart: {CHARTS / "observer"}, values: {{rbac: {{create: false}}}}}}
""",
    )
    make = engine()
    ref = SpaceRef(name=SpaceName("twin-1"), owner="ann", template="twin")
    HELD.add(f"{prefix}twin-1")
    try:
        Requests(make).create(
            CreateSpace(name="twin-1", template="twin", runtime="kubernetes"), actor=ANN
        )
        web = ResolvedService(
            name=ServiceName("web"), spec=Service.model_validate({"helm": {"chart": "x"}})
        )
        seen = wait_until(
            lambda: (o := runtime.probe(ref, web)).detail.startswith("0/2 available") and o,
            timeout=30,
            what="web's two replicas not available yet",
        )
        assert seen.running and seen.healthy is False
        time.sleep(2)  # however long the rollout takes, the space waits for it
        space = Queries(make).space("twin-1")
        assert space.phase == "provisioning" and space.service("web").status == "starting"
    finally:
        HELD.discard(f"{prefix}twin-1")
    assert phase(make, "twin-1", {"ready", "failed"}) == "ready"
    ready = Queries(make).space("twin-1").service("web")
    assert ready is not None and "2/2 available" in ready.detail
    # Logs come from the release's own pods, found by their owners (the chart sets no
    # instance label): the call goes to one of web's pods, whatever the emulator answers.
    asked: list[str] = []
    read = runtime.core.read_namespaced_pod_log

    def spy(name: str, namespace: str, **kwargs: object) -> object:
        asked.append(name)
        return read(name, namespace, **kwargs)

    runtime.core.read_namespaced_pod_log = spy  # type: ignore[method-assign]
    try:
        lines = list(runtime.logs(ref, ServiceName("web"), tail=10, follow=False))
    except LaunchbayError as e:
        lines = None
        why = e.message
    finally:
        runtime.core.read_namespaced_pod_log = read  # type: ignore[method-assign]
    assert len(asked) == 1 and asked[0].startswith("web-web-"), asked
    if lines is None:
        pytest.skip(f"the emulator does not serve pods/log ({why}); a real cluster does")


def test_real_cluster_runs_both_test_charts(tmp_path, templates):
    """Against a real cluster, with the real helm (LAUNCHBAY_E2E_KUBECONFIG: kind or k3d)."""
    import os

    kubeconfig = os.environ.get("LAUNCHBAY_E2E_KUBECONFIG")
    if not kubeconfig:
        pytest.skip(
            "real-cluster run: set LAUNCHBAY_E2E_KUBECONFIG to a kind or k3d cluster's kubeconfig"
        )
    from launchbay.runtimes.kubernetes.client import load_configuration
    from launchbay.runtimes.kubernetes.helm import Helm
    from launchbay.runtimes.kubernetes.runtime import ClusterSettings as Settings

    chart_template(
        templates,
        "both",
        f"""\
  web:
    helm: {{chart: {CHARTS / "web"}, values: {{image: {{repository: busybox, tag: "1.36"}}}}}}
  agent:
    helm: {{chart: {CHARTS / "observer"}, values: {{rbac: {{create: false}}, image: busybox:1.36}}}}
""",
    )
    store = Store(sqlite_url(tmp_path))
    store.migrate()
    runtime = KubernetesRuntime(
        LimitedApiClient(load_configuration(kubeconfig=kubeconfig)),
        Helm(env=os.environ | {"KUBECONFIG": kubeconfig}),
        Settings(namespace_prefix="lbe2e-"),
    )
    make = Engine(
        store=store,
        runtimes={"kubernetes": runtime},
        catalog=TemplateCatalog(templates),
        settings=EngineSettings(),
    )
    Launchbay.of(make)
    make.start()
    try:
        Requests(make).create(
            CreateSpace(name="charts-1", template="both", runtime="kubernetes"), actor=ANN
        )
        assert phase(make, "charts-1", {"ready", "failed"}) == "ready"
        Requests(make).delete("charts-1", actor=ANN)
        phase(make, "charts-1", {"deleted"})
    finally:
        make.stop()
        store.close()


# One release: twenty rounds of delete and create stay well within a test's time.
ONE_CHART = """\
name: one
ttl: {default: 1h, max: 2h}
services:
  web:
    helm:
      chart: ${template.dir}/../charts/service
      port: 8080
      values: {image: "launchbay-demo:local", command: [httpd, -f, -p, "8080"], port: 8080}
"""
ONE_SPACE = CreateSpace(name="same", template="one", runtime="kubernetes")


@pytest.mark.timeout(900)  # twenty creates and deletes, on a shared machine
def test_emulated_two_installations_with_one_prefix_each_keep_their_own_space_of_one_name(
    kube_cluster, tmp_path: Path, templates: Path
):
    """Two servers on one cluster with the same namespace prefix: each makes `same` in a
    namespace carrying its installation, and ten rounds of each one's orphan sweep,
    delete and create leave the other's namespace as it was."""
    url, helm = kube_cluster
    prefix = f"lbt-i{abs(hash(tmp_path)) % 10**5}-"
    (templates / "one.yaml").write_text(ONE_CHART)
    core = client.CoreV1Api(api_client(url, rate=1000, burst=1000))
    made: list[tuple[Engine, RenderingInstaller, Store]] = []
    for installation in ("aaaaaa", "bbbbbb"):
        (tmp_path / installation).mkdir()
        store = Store(sqlite_url(tmp_path / installation))
        store.migrate()
        installer = RenderingInstaller(url, helm)
        runtime = KubernetesRuntime(
            api_client(url),
            installer,
            ClusterSettings(namespace_prefix=prefix, installation=installation, delete_timeout=10),
        )
        engine = Engine(
            store=store,
            runtimes={"kubernetes": runtime},
            catalog=TemplateCatalog(templates),
            settings=EngineSettings(orphan_grace=0, min_ttl=timedelta(seconds=1)),
        )
        Launchbay.of(engine)
        engine.start()
        made.append((engine, installer, store))
    try:
        engines = [m[0] for m in made]
        for engine in engines:
            Requests(engine).create(ONE_SPACE, actor=ANN)
        for engine in engines:
            assert phase(engine, "same", {"ready", "failed"}) == "ready"
        uids = {
            i: core.read_namespace(f"{prefix}{i}-same").metadata.uid for i in ("aaaaaa", "bbbbbb")
        }
        for round_ in range(20):  # ten of each server's
            mover, keeper = (0, 1) if round_ % 2 == 0 else (1, 0)
            reconcile_once(engines[mover])  # its orphan sweep sees the other's namespace too
            Requests(engines[mover]).delete("same", actor=ANN)
            phase(engines[mover], "same", {"deleted"})
            reconcile_once(engines[mover])
            Requests(engines[mover]).create(ONE_SPACE, actor=ANN)
            assert phase(engines[mover], "same", {"ready", "failed"}) == "ready"
            moved = ("aaaaaa", "bbbbbb")[mover]
            uids[moved] = core.read_namespace(f"{prefix}{moved}-same").metadata.uid
            installation = ("aaaaaa", "bbbbbb")[keeper]
            kept = core.read_namespace(f"{prefix}{installation}-same")
            assert kept.metadata.uid == uids[installation], f"round {round_}"
            assert kept.metadata.labels["launchbay.dev/installation"] == installation
            assert Queries(engines[keeper]).space("same").phase == "ready"
        for engine in engines:
            assert engine.runtimes["kubernetes"].spaces() == {SpaceName("same")}
    finally:
        for engine, installer, store in made:
            engine.stop()
            installer.close()
            store.close()


def test_emulated_a_namespace_made_before_installations_is_adopted_once_by_its_server(
    kube_cluster, tmp_path: Path
):
    """`<prefix><space>` without an installation label (made by an earlier version) is taken
    by the server whose live space it is, labelled once and kept under its old name; another
    installation never sees it, and names a new space of that name apart."""
    url, helm = kube_cluster
    prefix = f"lbt-l{abs(hash(tmp_path)) % 10**5}-"
    core = client.CoreV1Api(api_client(url, rate=1000, burst=1000))
    legacy = {"app.kubernetes.io/managed-by": "launchbay", "launchbay.dev/space": "old"}
    core.create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=f"{prefix}old", labels=legacy))
    )
    installer = RenderingInstaller(url, helm)

    def runtime(installation: str) -> KubernetesRuntime:
        settings = ClusterSettings(namespace_prefix=prefix, installation=installation)
        return KubernetesRuntime(api_client(url), installer, settings)

    ours, theirs = runtime("aaaaaa"), runtime("bbbbbb")
    try:
        assert ours.spaces() == theirs.spaces() == set()  # nobody's until adopted
        theirs.adopt(set())  # not one of its live spaces: left alone
        ours.adopt({SpaceName("old")})
        found = core.read_namespace(f"{prefix}old")
        assert found.metadata.labels["launchbay.dev/installation"] == "aaaaaa"
        assert ours.spaces() == {SpaceName("old")} and theirs.spaces() == set()
        theirs.adopt({SpaceName("old")})  # labelled now: another installation's
        assert theirs.spaces() == set()
        assert theirs.namespaces.name("old") == f"{prefix}bbbbbb-old"
        ours.destroy_orphan(SpaceName("old"))
        wait_until(
            lambda: not any(n.metadata.name == f"{prefix}old" for n in core.list_namespace().items),
            timeout=30,
            what="the adopted namespace deleted by its server",
        )
    finally:
        for made in (ours, theirs):
            made.close()
        installer.close()
