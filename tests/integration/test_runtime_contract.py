"""The contract every runtime must keep, run against each runtime.

`kubernetes-emulated` runs the kubernetes runtime against kmock's emulated API server,
with the test playing the cluster's part (tests/kube_emulator.py); tests that need real
workloads (HTTP endpoints, exit codes, logs) use `workload_runtime`, which leaves it out.
`kubernetes-real` runs against a real cluster when LAUNCHBAY_E2E_KUBECONFIG is set and is
reported as skipped otherwise.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from launchbay.domain.names import ServiceName, SpaceName
from launchbay.domain.spec import ResolvedService, resolve_services
from launchbay.domain.template import parse_template
from launchbay.runtimes import registry
from launchbay.runtimes.base import Runtime, RuntimeContext, ServiceFailed, SpaceRef
from launchbay.runtimes.compose import ComposeRuntime
from launchbay.runtimes.kubernetes.runtime import ClusterSettings, KubernetesRuntime
from launchbay.runtimes.process import ProcessRuntime
from tests.fake_runtime import FakeRuntime, Script
from tests.kube_emulator import CRASHING_IMAGE, UNPULLABLE_IMAGE, RenderingInstaller, api_client
from tests.support import (
    BUSYBOX_IMAGE,
    ROOT,
    labelled_processes,
    launchbay_docker_objects,
    wait_until,
)

TEMPLATE = textwrap.dedent(
    """\
    name: contract
    ttl: {default: 1h, max: 2h}
    services:
      web:
        health: {http: /, interval: 100ms, timeout: 20s}
        endpoints: [{name: home, path: /}]
        process:
          command: [%(python)s, -m, http.server, "${services.web.port}", --bind, 127.0.0.1]
        compose:
          image: %(image)s
          command: [sh, -c, "mkdir -p /www && echo hello > /www/index.html && exec httpd -f -p 8080 -h /www"]
          ports: ["8080"]
        helm:
          chart: %(chart)s
          port: 8080
          values: {image: busybox:1.36, port: 8080, healthPath: /, command: [sh, -c, "mkdir -p /www && echo hello > /www/index.html && exec httpd -f -p 8080 -h /www"]}
      worker:
        depends_on: [web]
        process:
          command: [sh, -c, "echo worker up for ${space.name}; sleep 300 & while sleep 0.2; do echo tick; done"]
        compose:
          image: %(image)s
          command: [sh, -c, "echo worker up for ${space.name}; sleep 300 & while sleep 0.2; do echo tick; done"]
        helm:
          chart: %(chart)s
          values: {image: busybox:1.36, healthPath: "", command: [sh, -c, "echo worker up for ${space.name}; while sleep 0.2; do echo tick; done"]}
      broken:
        process:
          command: [%(python)s, -c, "import sys; print('boom'); sys.exit(3)"]
        compose:
          image: %(image)s
          command: [sh, -c, "echo boom; exit 3"]
        helm:
          chart: %(chart)s
          values: {image: %(crashing)s}
      missing:
        process:
          command: [/nonexistent/launchbay-test-binary]
        compose:
          image: %(image)s
          command: [/nonexistent/launchbay-test-binary]
        helm:
          chart: %(chart)s
          values: {image: %(unpullable)s}
    """
) % {
    "python": sys.executable,
    "image": BUSYBOX_IMAGE,
    "chart": ROOT / "examples" / "charts" / "service",
    "crashing": CRASHING_IMAGE,
    "unpullable": UNPULLABLE_IMAGE,
}


# How the contract's services behave on the fake runtime (it plays their backend).
FAKE_SCRIPTS = {
    "web": Script(ready_after=0.2),
    "worker": Script(log=("worker up", "tick")),
    "broken": Script(exit_code=3, log=("boom",)),
    "missing": Script(exit_code=127, log=("sh: /nonexistent/launchbay-test-binary: not found",)),
}


def make_runtime(request: pytest.FixtureRequest, kind: str, tmp_path: Path) -> Runtime:
    if kind == "fake":
        return FakeRuntime(scripts=FAKE_SCRIPTS)
    if kind == "compose":
        request.getfixturevalue("busybox_image")
        return ComposeRuntime(
            tmp_path / "runtime",
            project_prefix=f"lbt{abs(hash(tmp_path)) % 10**6}-",
            stop_timeout=1,
        )
    if kind == "kubernetes-emulated":
        url, helm = request.getfixturevalue("kube_cluster")
        prefix = f"lbt-{abs(hash(tmp_path)) % 10**6}-"
        return KubernetesRuntime(
            api_client(url),
            RenderingInstaller(url, helm),
            ClusterSettings(namespace_prefix=prefix, delete_timeout=10),
        )
    if kind == "kubernetes-real":
        kubeconfig = os.environ.get("LAUNCHBAY_E2E_KUBECONFIG")
        if not kubeconfig:
            pytest.skip(
                "real-cluster run: set LAUNCHBAY_E2E_KUBECONFIG to a kind or k3d cluster's kubeconfig"
            )
        from launchbay.runtimes.kubernetes.client import LimitedApiClient, load_configuration
        from launchbay.runtimes.kubernetes.helm import Helm

        api = LimitedApiClient(load_configuration(kubeconfig=kubeconfig))
        return KubernetesRuntime(
            api,
            Helm(env=os.environ | {"KUBECONFIG": kubeconfig}),
            ClusterSettings(namespace_prefix="lbe2e-"),
        )
    if kind == "process":
        return ProcessRuntime(tmp_path / "runtime", stop_grace=2.0)
    # Any other registered runtime, as a server makes it: a new runtime is picked up here.
    made = registry.KINDS[kind].make(RuntimeContext(tmp_path))
    if made is None:
        pytest.skip(f"the {kind} runtime needs settings this machine does not have")
    return made


def _finish(rt: Runtime) -> None:
    for name in rt.spaces():
        rt.destroy_orphan(name)
    rt.close()


# Each registered runtime, some in two ways (the emulated cluster here, a real one where
# LAUNCHBAY_E2E_KUBECONFIG names it), and the fake runtime the engine's tests run on.
VARIANTS = {"kubernetes": ["kubernetes-emulated", "kubernetes-real"]}
RUNTIMES = [variant for name in registry.NAMES for variant in VARIANTS.get(name, [name])]
# Not real workloads: no HTTP endpoint answers, no process exits with a code.
PLAYED = {"kubernetes-emulated", "fake"}


def test_the_contract_suite_runs_every_registered_runtime():
    assert all(any(v.startswith(name) for v in RUNTIMES) for name in registry.NAMES)
    assert set(registry.NAMES) == {"process", "compose", "kubernetes"}


@pytest.fixture(params=[*RUNTIMES, "fake"])
def runtime(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Runtime]:
    rt = make_runtime(request, request.param, tmp_path)
    yield rt
    _finish(rt)


@pytest.fixture(params=[r for r in RUNTIMES if r not in PLAYED])
def workload_runtime(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Runtime]:
    """Runtimes whose workloads really run here: endpoints answer, exit codes and logs exist."""
    rt = make_runtime(request, request.param, tmp_path)
    yield rt
    _finish(rt)


def space(name: str = "contract-a") -> SpaceRef:
    return SpaceRef(name=SpaceName(name), owner="ann", template="contract")


def services(runtime: Runtime, ref: SpaceRef):
    template = parse_template(TEMPLATE, file="/t/contract.yaml")
    addresses = runtime.addresses(ref, template.services)
    return resolve_services(
        template, space=ref.name, owner=ref.owner, params={}, overrides={}, addresses=addresses
    )


def worker_with_command(runtime: Runtime, ref: SpaceRef, command: str) -> ResolvedService:
    """The contract's worker service with another shell command, for the process runtime's own tests."""
    base = services(runtime, ref)["worker"]
    process = base.spec.process.model_copy(update={"command": ["sh", "-c", command]})
    return ResolvedService(
        name=ServiceName("worker"), spec=base.spec.model_copy(update={"process": process})
    )


def healthy(runtime: Runtime, ref: SpaceRef, service) -> bool:
    seen = runtime.probe(ref, service)
    return seen.running and seen.healthy is True


def test_addresses_are_stable_for_the_life_of_a_space(runtime):
    ref = space()
    specs = parse_template(TEMPLATE, file="/t/contract.yaml").services
    first = runtime.addresses(ref, specs)
    assert runtime.addresses(ref, specs) == first
    assert first["web"].port > 0
    endpoint = runtime.endpoints(ref, services(runtime, ref)["web"])["home"]
    assert endpoint.startswith("http://127.0.0.1:") or "port-forward svc/web 8080:8080" in endpoint


def test_a_started_service_becomes_healthy(runtime):
    ref = space()
    web = services(runtime, ref)["web"]
    runtime.start(ref, web)
    wait_until(lambda: healthy(runtime, ref, web), timeout=15, what="web healthy")
    assert ref.name in runtime.spaces()


def test_a_started_service_becomes_healthy_and_its_endpoint_answers(workload_runtime):
    runtime = workload_runtime
    ref = space()
    web = services(runtime, ref)["web"]
    runtime.start(ref, web)
    wait_until(lambda: healthy(runtime, ref, web), timeout=15, what="web healthy")
    url = runtime.endpoints(ref, web)["home"]
    import httpx

    assert httpx.get(url).status_code == 200


def test_starting_a_running_service_again_is_a_no_op(runtime):
    ref = space()
    web = services(runtime, ref)["web"]
    runtime.start(ref, web)
    wait_until(lambda: healthy(runtime, ref, web), timeout=15, what="web healthy")
    runtime.start(ref, web)
    assert healthy(runtime, ref, web)
    if isinstance(runtime, ProcessRuntime):
        assert len(labelled_processes(runtime.root, ref.name)) == 1


def test_a_service_that_keeps_failing_is_reported_not_running_with_why(runtime):
    ref = space()
    broken = services(runtime, ref)["broken"]
    runtime.start(ref, broken)
    seen = wait_until(
        lambda: (s := runtime.probe(ref, broken)) and not s.running and s, timeout=20, what="fail"
    )
    assert "exited with code 3" in seen.detail or "CrashLoopBackOff" in seen.detail


def test_a_service_that_exits_is_reported_not_running_with_its_exit(workload_runtime):
    runtime = workload_runtime
    ref = space()
    broken = services(runtime, ref)["broken"]
    runtime.start(ref, broken)
    seen = wait_until(
        lambda: (s := runtime.probe(ref, broken)) and not s.running and s, timeout=10, what="exit"
    )
    assert "3" in seen.detail
    assert "boom" in "".join(runtime.logs(ref, broken.name, tail=10, follow=False))


def test_a_command_that_does_not_exist_fails_naming_it(workload_runtime):
    """Either start refuses it, or the service is seen exited with the command named in its log."""
    runtime = workload_runtime
    ref = space()
    missing = services(runtime, ref)["missing"]
    try:
        runtime.start(ref, missing)
    except ServiceFailed as e:
        assert "/nonexistent/launchbay-test-binary" in e.message
        return
    seen = wait_until(
        lambda: (s := runtime.probe(ref, missing)) and not s.running and s, timeout=20, what="exit"
    )
    assert "exited with code 127" in seen.detail
    assert "/nonexistent/launchbay-test-binary" in "".join(
        runtime.logs(ref, missing.name, tail=20, follow=False)
    )


def test_stop_stops_the_service_and_its_children(runtime):
    ref = space()
    worker = services(runtime, ref)["worker"]
    runtime.start(ref, worker)
    wait_until(lambda: runtime.probe(ref, worker).running, timeout=15, what="worker running")
    runtime.stop(ref, worker.name)
    # status may come from a watch cache: the stop is seen within moments, not necessarily at once
    wait_until(lambda: not runtime.probe(ref, worker).running, timeout=10, what="worker stopped")
    if isinstance(runtime, ProcessRuntime):
        assert labelled_processes(runtime.root, ref.name) == {}


def test_destroy_removes_everything_and_is_idempotent(runtime):
    ref = space()
    svc = services(runtime, ref)
    runtime.start(ref, svc["web"])
    runtime.start(ref, svc["worker"])
    assert ref.name in runtime.spaces()
    runtime.destroy(ref)
    runtime.destroy(ref)
    assert ref.name not in runtime.spaces()
    assert not runtime.probe(ref, svc["web"]).running
    if isinstance(runtime, ComposeRuntime):
        assert launchbay_docker_objects(runtime.root) == []


def test_two_spaces_do_not_see_each_other(runtime):
    a, b = space("contract-a"), space("contract-b")
    web_a, web_b = services(runtime, a)["web"], services(runtime, b)["web"]
    runtime.start(ref := a, web_a)
    runtime.start(b, web_b)
    wait_until(
        lambda: healthy(runtime, ref, web_a) and healthy(runtime, b, web_b), timeout=15, what="both"
    )
    runtime.destroy(a)
    assert healthy(runtime, b, web_b)


def test_logs_follow_new_lines(workload_runtime):
    runtime = workload_runtime
    ref = space()
    worker = services(runtime, ref)["worker"]
    runtime.start(ref, worker)
    wait_until(
        lambda: "tick" in "".join(runtime.logs(ref, worker.name, tail=5, follow=False)),
        timeout=10,
        what="first tick",
    )
    lines = runtime.logs(ref, worker.name, tail=0, follow=True)
    assert next(lines).strip() == "tick"
    lines.close()


# -- the process runtime's own promises ----------------------------------------------------


def test_process_runtime_readopts_live_processes_after_a_restart(tmp_path):
    root = tmp_path / "runtime"
    first = ProcessRuntime(root)
    ref = space()
    web = services(first, ref)["web"]
    first.start(ref, web)
    wait_until(lambda: healthy(first, ref, web), timeout=15, what="web healthy")
    (pid,) = labelled_processes(root, ref.name)

    second = ProcessRuntime(root)  # a restarted server
    assert healthy(second, ref, web)
    second.start(ref, web)
    assert list(labelled_processes(root, ref.name)) == [pid]
    second.destroy(ref)
    assert labelled_processes(root, ref.name) == {}


def test_process_runtime_never_adopts_or_kills_a_stranger_that_reused_a_pid(tmp_path):
    root = tmp_path / "runtime"
    runtime = ProcessRuntime(root, stop_grace=1.0)
    ref = space()
    web = services(runtime, ref)["web"]
    stranger = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        folder = root / ref.name
        folder.mkdir(parents=True, exist_ok=True)
        # The record names the stranger's pid with another start time: a reused pid.
        (folder / "web.pid").write_text(f'{{"pid": {stranger.pid}, "start_time": 1}}')
        assert not runtime.probe(ref, web).running
        runtime.destroy(ref)
        time.sleep(0.2)
        assert stranger.poll() is None, "the stranger was killed"
    finally:
        stranger.kill()
        stranger.wait()


def test_process_runtime_stops_children_that_left_the_process_group(tmp_path):
    root = tmp_path / "runtime"
    runtime = ProcessRuntime(root, stop_grace=1.0)
    ref = space()
    service = worker_with_command(runtime, ref, "setsid sleep 300 & sleep 300")
    runtime.start(ref, service)
    wait_until(
        lambda: len(labelled_processes(root, ref.name)) >= 3, timeout=10, what="children started"
    )
    runtime.stop(ref, service.name)
    assert labelled_processes(root, ref.name) == {}


def test_process_runtime_stops_a_service_that_ignores_sigterm(tmp_path):
    root = tmp_path / "runtime"
    runtime = ProcessRuntime(root, stop_grace=0.5)
    ref = space()
    service = worker_with_command(runtime, ref, "trap '' TERM; sleep 300 & wait")
    runtime.start(ref, service)
    wait_until(lambda: len(labelled_processes(root, ref.name)) >= 2, timeout=10, what="started")
    runtime.stop(ref, service.name)
    assert labelled_processes(root, ref.name) == {}


def test_process_runtime_services_do_not_inherit_the_servers_secrets(tmp_path, monkeypatch):
    monkeypatch.setenv("BAY_TOKEN", "secret-token")
    runtime = ProcessRuntime(tmp_path / "runtime")
    ref = space()
    service = worker_with_command(runtime, ref, "echo token=[$BAY_TOKEN] port=$PORT; sleep 30")
    runtime.start(ref, service)
    log = wait_until(
        lambda: "".join(runtime.logs(ref, service.name, tail=5, follow=False)).count("token="),
        timeout=10,
        what="output",
    )
    text = "".join(runtime.logs(ref, service.name, tail=5, follow=False))
    assert (
        log
        and "token=[]" in text
        and f"port={runtime.addresses(ref, [service.name])['worker'].port}" in text
    )
    runtime.destroy(ref)
