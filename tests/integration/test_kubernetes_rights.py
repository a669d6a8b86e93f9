"""What the kubernetes runtime sends a cluster, checked two ways that need no cluster:

- every object a chart renders validates against Kubernetes' own OpenAPI schema
  (kubernetes-validate, strict: an unknown field is an error), so a chart a cluster would
  refuse fails here first;
- every API call the runtime makes through a space's whole life (create, sleep, wake,
  delete) on the emulated API server is one the server's own RBAC grants: the ClusterRole
  of `deploy/helm/launchbay`, plus the built-in `admin` role it binds inside each space's
  namespace. A call outside them would be a 403 on a real cluster.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from launchbay.domain.auth import Actor
from launchbay.engine.assembly import Launchbay
from launchbay.engine.catalog import TemplateCatalog
from launchbay.engine.engine import Engine, EngineSettings
from launchbay.engine.queries import Queries
from launchbay.engine.requests import CreateSpace, Requests
from launchbay.runtimes.kubernetes.client import LimitedApiClient
from launchbay.runtimes.kubernetes.runtime import ClusterSettings, KubernetesRuntime
from launchbay.runtimes.proc import run
from launchbay.store.db import Store, sqlite_url
from tests.integration.test_helm_charts import CHARTS, helm, helm_cli  # noqa: F401 - a fixture
from tests.kube_emulator import RenderingInstaller, api_client
from tests.support import ROOT, wait_until

KUBERNETES = "1.33"  # the oldest version the runtime supports
SERVER_CHART = ROOT / "deploy" / "helm" / "launchbay"
# Namespaced resources the built-in `admin` ClusterRole lets its subject write in a
# namespace (quotas and limit ranges it may only read).
ADMIN_READ_ONLY = {"resourcequotas", "limitranges", "namespaces"}


# -- the schema --------------------------------------------------------------------------------


def schema_problems(manifests: list[dict[str, Any]]) -> list[str]:
    problems = []
    for doc in manifests:
        try:
            kubernetes_validate.validate(doc, KUBERNETES, strict=True)
        except kubernetes_validate.ValidationError as e:
            where = ".".join(str(p) for p in e.path)
            problems.append(f"{doc['kind']} {doc['metadata']['name']}: {where}: {e.message}")
    return problems


@pytest.mark.parametrize("chart", CHARTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_chart_renders_objects_kubernetes_own_schema_accepts(helm, chart):  # noqa: F811
    rendered = helm_cli(helm, "template", "check", str(chart), "--namespace", "lb-check")
    assert rendered.code == 0, rendered.stderr
    manifests = [d for d in yaml.safe_load_all(rendered.stdout) if d]
    assert manifests and schema_problems(manifests) == []


def test_the_schema_check_fails_on_a_planted_bad_object():
    def deployment(replicas: Any, container: dict[str, Any]) -> dict[str, Any]:
        return {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "planted"},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"a": "b"}},
                "template": {
                    "metadata": {"labels": {"a": "b"}},
                    "spec": {"containers": [{"name": "c", "image": "x", **container}]},
                },
            },
        }

    assert schema_problems([deployment(1, {})]) == []
    (wrong_type,) = schema_problems([deployment("two", {})])
    assert "spec.replicas" in wrong_type
    (unknown_field,) = schema_problems([deployment(1, {"imagePolicy": "always"})])
    assert "imagePolicy" in unknown_field


# -- the rights -----------------------------------------------------------------------------


class RecordingApiClient(LimitedApiClient):
    """The runtime's client, recording each call as (method, path, query)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.recorded: list[tuple[str, str, dict[str, Any]]] = []

    def call_api(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        parsed = urllib.parse.urlsplit(url)
        query = dict(urllib.parse.parse_qsl(parsed.query))
        self.recorded.append((method, parsed.path, query))
        return super().call_api(method, url, *args, **kwargs)


def request_of(method: str, path: str, query: dict[str, Any]) -> tuple[str, str, str, bool]:
    """(API group, resource[/subresource], verb, namespaced) of one call."""
    parts = path.strip("/").split("/")
    group, rest = ("", parts[2:]) if parts[0] == "api" else (parts[1], parts[3:])
    namespaced = len(rest) >= 3 and rest[0] == "namespaces"  # namespaces/NS/RESOURCE...
    if namespaced:
        rest = rest[2:]
    resource, named = rest[0], len(rest) >= 2
    if len(rest) >= 3:
        resource += "/" + rest[2]
    verbs = {"POST": "create", "PATCH": "patch", "PUT": "update"}
    if method == "GET":
        verb = "get" if named else ("watch" if query.get("watch") in ("true", "True") else "list")
    elif method == "DELETE":
        verb = "delete" if named else "deletecollection"
    else:
        verb = verbs[method]
    return group, resource, verb, namespaced


def cluster_role_rules() -> list[dict[str, Any]]:
    rendered = run(
        [_helm_binary(), "template", "lb", str(SERVER_CHART), "--set", "rbac.create=true"],
        timeout=60,
    )
    assert rendered.code == 0, rendered.stderr
    roles = [d for d in yaml.safe_load_all(rendered.stdout) if d and d.get("kind") == "ClusterRole"]
    assert len(roles) == 1
    rules: list[dict[str, Any]] = roles[0]["rules"]
    return rules


def _helm_binary() -> str:
    from launchbay.runtimes.kubernetes.helm import default_binary

    return default_binary()


def granted(rules: list[dict[str, Any]], group: str, resource: str, verb: str) -> bool:
    return any(
        group in rule.get("apiGroups", [])
        and resource in rule.get("resources", [])
        and verb in rule.get("verbs", [])
        and not rule.get("resourceNames")
        for rule in rules
    )


def unpermitted(
    calls: list[tuple[str, str, dict[str, Any]]], rules: list[dict[str, Any]]
) -> list[str]:
    """The calls neither the ClusterRole nor `admin` inside a namespace would allow."""
    refused = set()
    for method, path, query in calls:
        group, resource, verb, namespaced = request_of(method, path, query)
        if granted(rules, group, resource, verb):
            continue
        base = resource.split("/")[0]
        writes = verb in ("create", "patch", "update", "delete", "deletecollection")
        if namespaced and not (writes and base in ADMIN_READ_ONLY):
            continue  # `admin`, bound in the space's namespace, allows it
        refused.add(f"{verb} {group or 'core'}/{resource}{' (namespaced)' if namespaced else ''}")
    return sorted(refused)


@pytest.fixture
def recorded(kube_cluster, tmp_path: Path) -> Iterator[tuple[RecordingApiClient, Engine]]:
    url, helm_renderer = kube_cluster
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "shop.yaml").write_text(
        "name: shop\nttl: {default: 1h, max: 2h}\nservices:\n"
        "  front:\n    endpoints: [{name: home, path: /}]\n"
        f"    helm: {{chart: {ROOT / 'tests' / 'material' / 'charts' / 'web'}}}\n"
    )
    store = Store(sqlite_url(tmp_path))
    store.migrate()
    api = RecordingApiClient(api_client(url).configuration, rate=1000, burst=1000)
    installer = RenderingInstaller(url, helm_renderer)
    runtime = KubernetesRuntime(
        api,
        installer,
        ClusterSettings(
            namespace_prefix=f"lbt-r{abs(hash(tmp_path)) % 10**5}-",
            delete_timeout=10,
            service_account="launchbay",
            own_namespace="launchbay-system",
        ),
    )
    engine = Engine(
        store=store,
        runtimes={"kubernetes": runtime},
        catalog=TemplateCatalog(templates),
        settings=EngineSettings(),
    )
    Launchbay.of(engine).start()
    yield api, engine
    engine.stop()
    installer.close()
    store.close()


def test_emulated_every_call_of_a_spaces_life_is_granted_by_the_servers_rbac(recorded):
    api, engine = recorded
    ann = Actor("ann")

    def phase(wanted: str) -> str:
        return wait_until(
            lambda: (p := Queries(engine).space("rights-1").phase) == wanted and p,
            timeout=60,
            what=f"rights-1 {wanted}",
        )

    Requests(engine).create(
        CreateSpace(name="rights-1", template="shop", runtime="kubernetes"), actor=ann
    )
    phase("ready")
    Requests(engine).sleep("rights-1", actor=ann)
    phase("sleeping")
    Requests(engine).wake("rights-1", actor=ann)
    phase("ready")
    Requests(engine).delete("rights-1", actor=ann)
    phase("deleted")
    seen = {request_of(*call)[:3] for call in api.recorded}
    assert {
        ("", "namespaces", "create"),  # cluster-wide: the ClusterRole's
        ("apps", "replicasets", "watch"),
        ("apps", "deployments", "patch"),  # sleep, in the namespace: `admin`'s
        ("networking.k8s.io", "ingresses", "get"),
    } <= seen
    assert unpermitted(api.recorded, cluster_role_rules()) == []


def test_the_rights_check_fails_on_a_planted_unpermitted_call():
    rules = cluster_role_rules()
    planted = [
        ("GET", "/api/v1/persistentvolumes", {}),
        ("DELETE", "/apis/apps/v1/namespaces/lb-x/deployments/web", {}),
        ("DELETE", "/api/v1/namespaces/lb-x/resourcequotas/launchbay-quota", {}),
    ]
    assert unpermitted(planted, rules) == [
        "delete core/resourcequotas (namespaced)",
        "list core/persistentvolumes",
    ]
