"""Every chart in the repo, linted and rendered by the real helm binary; the demo template's
helm sections rendered with the values Launchbay resolves for a Team Space.

The Kubernetes API is not involved here: nothing is installed, only rendered."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from launchbay.domain.errors import Invalid
from launchbay.domain.names import SpaceName
from launchbay.domain.spec import resolve_params, resolve_services
from launchbay.domain.template import HelmSection, parse_template
from launchbay.runtimes.base import ServiceFailed
from launchbay.runtimes.kubernetes.helm import Helm
from launchbay.runtimes.kubernetes.naming import (
    LAUNCHBAY,
    MANAGED_BY,
    is_protected,
    may_delete,
    namespace_for,
    service_address,
)
from launchbay.runtimes.proc import run
from tests.support import EXAMPLES, ROOT

CHARTS = sorted(p.parent for p in ROOT.glob("**/Chart.yaml") if ".venv" not in p.parts)
SERVER_CHART = ROOT / "deploy" / "helm" / "launchbay"


@pytest.fixture(scope="module")
def helm(tmp_path_factory) -> Helm:
    binary = shutil.which("helm") or str(Path(sys.executable).parent / "helm")
    home = tmp_path_factory.mktemp("helm")
    env = dict(os.environ) | {
        f"HELM_{kind}_HOME": str(home / kind.lower()) for kind in ("CACHE", "CONFIG", "DATA")
    }
    return Helm(binary, env=env)


def helm_cli(helm: Helm, *args: str):
    return run([helm.binary, *args], env=helm.env, timeout=120)


def test_the_helm_binary_is_v3_or_v4(helm):
    assert helm.major_version() in (3, 4)


def test_there_are_charts_to_check():
    assert {c.name for c in CHARTS} >= {"service", "launchbay"}


@pytest.mark.parametrize("chart", CHARTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_chart_lints_strictly_and_renders(helm, chart):
    lint = helm_cli(helm, "lint", "--strict", str(chart))
    assert lint.code == 0, lint.stdout + lint.stderr
    rendered = helm_cli(helm, "template", "check", str(chart))
    assert rendered.code == 0, rendered.stderr
    assert "\nkind: " in rendered.stdout  # it renders objects


@pytest.mark.parametrize("replicas", [1, 3])
def test_the_server_chart_renders_with_one_and_three_replicas(helm, replicas):
    args = ["template", "lb", str(SERVER_CHART), "--set", f"replicaCount={replicas}"]
    if replicas > 1:
        args += ["--set", "database.url=postgresql+psycopg://launchbay@db/launchbay"]
    result = helm_cli(helm, *args)
    assert result.code == 0, result.stderr
    assert f"replicas: {replicas}\n" in result.stdout
    assert "path: /healthz" in result.stdout and "path: /readyz" in result.stdout
    assert "kind: ClusterRole" in result.stdout and "kind: ServiceAccount" in result.stdout
    if replicas > 1:
        assert "secretKeyRef" in result.stdout and "name: LAUNCHBAY_DB" in result.stdout


def test_the_server_chart_refuses_several_replicas_without_a_shared_store(helm):
    result = helm_cli(helm, "template", "lb", str(SERVER_CHART), "--set", "replicaCount=3")
    assert result.code != 0 and "needs a shared PostgreSQL store" in result.stderr


def test_the_demo_renders_with_in_cluster_addresses_for_a_team_space(helm):
    template = parse_template(
        (EXAMPLES / "demo.yaml").read_text(), file=str(EXAMPLES / "demo.yaml")
    )
    namespace = namespace_for("lb-", SpaceName("pr-1"))
    addresses = {
        name: service_address(namespace, name, service_name=s.helm.service, port=s.helm.port)
        for name, s in template.services.items()
    }
    services = resolve_services(
        template,
        space=SpaceName("pr-1"),
        owner="ann",
        params=resolve_params(template, {}),
        overrides={},
        addresses=addresses,
    )
    manifests = helm.template(
        release="api",
        namespace=namespace,
        section=services["api"].spec.helm,
        values=services["api"].spec.helm.values,
        service="api",
    )
    deployment = next(m for m in manifests if m["kind"] == "Deployment")
    env = {
        e["name"]: e["value"]
        for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["KV_URL"] == "http://kv.lb-pr-1.svc.cluster.local:8080"
    assert env["GREETING"] == "Hello"
    service = next(m for m in manifests if m["kind"] == "Service")
    assert service["metadata"]["name"] == "api"


def test_a_chart_that_does_not_exist_fails_with_the_service_and_helms_error(helm):
    template = parse_template(
        (EXAMPLES / "demo.yaml").read_text(), file=str(EXAMPLES / "demo.yaml")
    )
    section = template.services["kv"].helm.model_copy(update={"chart": "/nonexistent/chart"})
    with pytest.raises(
        ServiceFailed, match=r"service 'kv': helm template failed: .*(not found|no such file)"
    ):
        helm.template(release="kv", namespace="lb-x", section=section, values={}, service="kv")


def test_a_chart_that_does_not_render_fails_with_the_service_named(helm, tmp_path):
    chart = tmp_path / "broken"
    shutil.copytree(EXAMPLES.parent / "charts" / "service", chart)
    (chart / "templates" / "oops.yaml").write_text("{{ .Values.nope.deeper }}\n")
    section = (
        parse_template((EXAMPLES / "demo.yaml").read_text(), file="demo.yaml").services["kv"].helm
    )
    with pytest.raises(
        ServiceFailed, match=r"(?s)service .kv.: helm template failed: .*nil pointer"
    ):
        helm.template(
            release="kv",
            namespace="lb-x",
            section=section.model_copy(update={"chart": str(chart)}),
            values={},
            service="kv",
        )


def test_values_that_are_not_a_mapping_are_refused_at_template_load():
    text = (
        (EXAMPLES / "demo.yaml")
        .read_text()
        .replace(
            '      values:\n        image: ${params.image}\n        command: [httpd, -f, -p, "8080", -h, /srv/kv]\n        port: 8080\n',
            "      values: [1, 2]\n",
            1,
        )
    )
    with pytest.raises(
        Invalid, match=r"services\.kv\.helm\.values: Input should be a valid dictionary"
    ):
        parse_template(text, file="demo.yaml")


def test_namespace_names_over_63_characters_are_refused():
    assert namespace_for("lb-", SpaceName("a" * 40)) == "lb-" + "a" * 40
    with pytest.raises(Invalid, match="Kubernetes allows 63"):
        namespace_for("team-platform-spaces-prefix-", SpaceName("a" * 40))


def test_protected_and_unlabelled_namespaces_are_never_deletable():
    labelled = {MANAGED_BY: LAUNCHBAY}
    assert may_delete("lb-pr-1", labelled, own="launchbay", has_record=True)
    assert not may_delete("lb-pr-1", {}, own="launchbay", has_record=True)  # unlabelled
    assert not may_delete("lb-pr-1", labelled, own="launchbay", has_record=False)  # no record
    for name in ("default", "kube-system", "kube-public", "launchbay"):
        assert is_protected(name, own="launchbay")
        assert not may_delete(name, labelled, own="launchbay", has_record=True)


TYPED_CHART = {
    "Chart.yaml": "apiVersion: v2\nname: web\nversion: 0.1.0\n",
    "values.yaml": "replicas: 1\ningress:\n  enabled: true\n",
    "templates/deployment.yaml": (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }}-web\n"
        "  annotations:\n    replicas-kind: {{ kindOf .Values.replicas | quote }}\n"
        "spec:\n  replicas: {{ .Values.replicas }}\n"
        "  selector: {matchLabels: {app.kubernetes.io/name: web}}\n"
        "  template:\n    metadata: {labels: {app.kubernetes.io/name: web}}\n"
        "    spec: {containers: [{name: web, image: web:1}]}\n"
    ),
    "templates/ingress.yaml": (
        "{{- if .Values.ingress.enabled }}\napiVersion: networking.k8s.io/v1\nkind: Ingress\n"
        "metadata:\n  name: {{ .Release.Name }}-web\nspec:\n  rules: [{host: web.example}]\n"
        "{{- end }}\n"
    ),
}


def test_set_values_keep_their_types_and_a_relative_chart_is_the_templates(helm, tmp_path):
    # `--set web.values.ingress.enabled=false` used to reach helm as the string "false",
    # which Go templates take as true (the Ingress was rendered); replicas was "2".
    folder = tmp_path / "templates"
    for name, text in TYPED_CHART.items():
        (folder / "chart" / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / "chart" / name).write_text(text)
    text = (
        "name: typed\nttl: {default: 1h, max: 2h}\nservices:\n  web:\n"
        "    overridable: {values: [replicas, ingress.enabled, note]}\n"
        "    helm: {chart: ./chart}\n"
    )
    template = parse_template(text, file=str(folder / "typed.yaml"))
    overrides = {
        "web": {"values.ingress.enabled": "false", "values.replicas": "2", "values.note": "'2'"}
    }
    (web,) = resolve_services(
        template, space=SpaceName("t1"), owner="o", params={}, overrides=overrides, addresses={}
    ).values()
    assert web.spec.helm is not None and web.spec.helm.chart == str(folder / "chart")
    assert web.spec.helm.values == {"ingress": {"enabled": False}, "replicas": 2, "note": "2"}
    rendered = helm.template(
        release="web",
        namespace="lb-t1",
        section=web.spec.helm,
        values=web.spec.helm.values,
        service="web",
    )
    assert [doc["kind"] for doc in rendered] == ["Deployment"]  # no Ingress
    (deployment,) = rendered
    assert deployment["spec"]["replicas"] == 2
    assert deployment["metadata"]["annotations"]["replicas-kind"] in ("int", "int64", "float64")


def test_string_values_that_read_as_numbers_reach_the_chart_as_strings(helm, tmp_path):
    # An image tag `093849` or a note `1e5` was written plain (PyYAML's 1.1 rules say
    # string); helm reads by Go's rules and rendered 93849 and 100000.
    chart = tmp_path / "chart"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: shown\nversion: 0.1.0\n")
    (chart / "templates" / "shown.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: shown}\ndata:\n"
        '{{- range $k, $v := .Values }}\n  {{ $k }}: {{ printf "%v %s" $v (kindOf $v) | quote }}\n'
        "{{- end }}\n"
    )
    values = {"tag": "093849", "note": "1e5", "octal": "0o17", "answer": "No", "count": 3}
    (shown,) = helm.template(
        release="shown",
        namespace="lb-t1",
        section=HelmSection(chart=str(chart)),
        values=values,
        service="web",
    )
    assert shown["data"].pop("count") in ("3 int64", "3 float64")  # a number stays one
    assert shown["data"] == {
        "tag": "093849 string",
        "note": "1e5 string",
        "octal": "0o17 string",
        "answer": "No string",
    }


def test_validate_finds_a_missing_chart_and_what_helm_lint_finds_naming_the_service(tmp_path):
    folder = tmp_path / "templates"
    (folder / "broken").mkdir(parents=True)
    (folder / "broken" / "Chart.yaml").write_text("apiVersion: v2\nname: broken\n")  # no version
    (folder / "t.yaml").write_text(
        "name: t\nttl: {default: 1h, max: 2h}\nservices:\n"
        "  gone:\n    helm: {chart: ./no-such-chart}\n"
        "  broken:\n    helm: {chart: ./broken}\n"
        f"  fine:\n    helm: {{chart: {ROOT / 'tests' / 'material' / 'charts' / 'web'}}}\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "launchbay", "template", "validate", str(folder / "t.yaml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"services.gone.helm.chart: no chart at {folder / 'no-such-chart'}" in result.stderr
    assert "services.broken.helm.chart: [ERROR] Chart.yaml: version is required" in result.stderr
    assert "services.fine" not in result.stderr and "Traceback" not in result.stderr


def test_the_server_charts_settings_values_are_the_servers_settings_file(helm, tmp_path):
    # One settings tree: the chart's `settings:` values are written as the file the server
    # reads with --config, so every key the file knows is a chart value too.
    from launchbay.settings import Sources, load

    result = helm_cli(
        helm,
        "template",
        "lb",
        str(SERVER_CHART),
        "--set",
        "settings.engine.workers=8",
        "--set",
        "settings.notifications.warn_before={2h,10m}",
    )
    assert result.code == 0, result.stderr
    objects = [o for o in yaml.safe_load_all(result.stdout) if o]
    (settings,) = [o for o in objects if o["metadata"]["name"] == "lb-launchbay-settings"]
    (path := tmp_path / "launchbay.yaml").write_text(settings["data"]["launchbay.yaml"])
    tree = load(Sources(file=path, environ={}))
    assert tree.engine.workers == 8 and tree.engine.sweep_interval == 5
    assert tree.notifications.warn_before == ["2h", "10m"]
    assert (tree.server.host, str(tree.server.templates)) == ("0.0.0.0", "/etc/launchbay/templates")
    (deployment,) = [o for o in objects if o["kind"] == "Deployment"]
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args == ["server", "--config=/etc/launchbay/settings/launchbay.yaml"]


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("engine.copilot=true", "values engine.* moved to settings.engine"),
        ("kubernetes.namespacePrefix=team-", "values kubernetes.* moved to settings.kubernetes"),
        ("settings.server.port=9000", "settings.server.port is the chart's to set"),
    ],
)
def test_the_server_chart_refuses_values_it_no_longer_reads(helm, value, said):
    # Dropped silently, an old `engine.copilot=true` would have turned copilot off: the
    # reaper would delete expired spaces instead of marking them.
    result = helm_cli(helm, "template", "lb", str(SERVER_CHART), "--set", value)
    assert result.code != 0 and said in result.stderr
