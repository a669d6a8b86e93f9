"""Each runtime translates its backend's answers once, into the four error classes the job
wrapper acts on (retry or not; see test_engine_fake.py and test_kubernetes_emulated.py
for the whole path through the engine). Faults are injected at the backend's client."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
import requests
from docker.errors import APIError, DockerException

from launchbay.domain.errors import Conflict, NotFound, Refused, TemporaryError
from launchbay.domain.names import SpaceName
from launchbay.runtimes import process as process_module
from launchbay.runtimes.base import RuntimeUnavailable, ServiceFailed, SpaceRef
from launchbay.runtimes.compose import ComposeRuntime
from launchbay.runtimes.process import ProcessRuntime


class DockerAnswering:
    """A Docker SDK client whose every listing gets the Engine's `status` answer."""

    def __init__(self, error: Exception) -> None:
        self.error = error
        for kind in ("containers", "networks", "volumes", "images"):
            setattr(self, kind, self)

    def list(self, **_: object) -> list[object]:
        raise self.error


def api_error(status: int) -> APIError:
    response = requests.Response()
    response.status_code = status
    return APIError(f"{status} injected", response=response, explanation=f"injected {status}")


@pytest.mark.parametrize(
    ("error", "expected", "said"),
    [
        (DockerException("connection refused"), RuntimeUnavailable, "Docker did not answer"),
        (api_error(500), RuntimeUnavailable, "Docker did not answer"),
        (api_error(403), Refused, "Docker refused to list containers"),
        (api_error(404), NotFound, "Docker has nothing to list containers"),
        (api_error(409), Conflict, "Docker could not list containers, it changed meanwhile"),
    ],
)
def test_compose_runtime_translates_the_docker_engines_answers(tmp_path, error, expected, said):
    runtime = ComposeRuntime(tmp_path / "runtime")
    runtime.docker._client = DockerAnswering(error)
    with pytest.raises(expected, match=said) as raised:
        runtime.stop(SpaceRef(name=SpaceName("s"), owner="ann", template="t"), "web")
    # Only unavailable is temporary (retried); a refusal says what was refused.
    assert isinstance(raised.value, TemporaryError) is (expected is RuntimeUnavailable)


class FailingContainer:
    """One service's container, whose own calls get the Engine's error answer."""

    status = "running"

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.labels = {"dev.launchbay.service": "web", "dev.launchbay.space": "s"}
        self.attrs = {"Labels": self.labels}

    def stop(self, **_: object) -> None:
        raise self.error

    def logs(self, **_: object) -> None:
        raise self.error


class DockerWithOneContainer(DockerAnswering):
    def __init__(self, container: FailingContainer) -> None:
        super().__init__(DockerException("unused"))
        self.container = container

    def list(self, **_: object) -> list[object]:
        return [self.container]


@pytest.mark.parametrize("call", ["stop", "sleep", "logs"])
def test_one_containers_error_is_its_services_never_the_whole_runtimes(tmp_path, call):
    # Calls on a container (stop, logs) were not translated at all: the guard took one
    # container's 500 for the whole compose runtime being unavailable.
    runtime = ComposeRuntime(tmp_path / "runtime")
    runtime.docker._client = DockerWithOneContainer(FailingContainer(api_error(500)))
    ref = SpaceRef(name=SpaceName("s"), owner="ann", template="t")
    with pytest.raises(ServiceFailed, match="service 'web': Docker could not") as raised:
        if call == "logs":
            list(runtime.logs(ref, "web", tail=10, follow=False))
        elif call == "sleep":
            runtime.sleep(ref, ["web"])
        else:
            runtime.stop(ref, "web")
    assert not isinstance(raised.value, TemporaryError)


def test_a_container_call_that_gets_no_answer_is_the_runtime_unavailable(tmp_path):
    runtime = ComposeRuntime(tmp_path / "runtime")
    runtime.docker._client = DockerWithOneContainer(
        FailingContainer(DockerException("connection refused"))
    )
    with pytest.raises(RuntimeUnavailable, match="Docker did not answer"):
        runtime.stop(SpaceRef(name=SpaceName("s"), owner="ann", template="t"), "web")


# -- the process runtime: its backend is the operating system -------------------------------


def contract_web(runtime):
    from tests.integration.test_runtime_contract import services, space

    ref = space()
    return ref, services(runtime, ref)["web"]


def failing_with(error: OSError):
    def fail(*_: object, **__: object) -> int:
        raise error

    return fail


@pytest.mark.parametrize(
    ("error", "expected", "said"),
    [
        (OSError(errno.EAGAIN, "Resource temporarily unavailable"), RuntimeUnavailable, "now"),
        (OSError(errno.ENOMEM, "Cannot allocate memory"), RuntimeUnavailable, "now"),
        (PermissionError(errno.EACCES, "Permission denied"), ServiceFailed, "not executable"),
        (FileNotFoundError(errno.ENOENT, "No such file"), ServiceFailed, "command not found"),
        (OSError(errno.E2BIG, "Argument list too long"), ServiceFailed, "cannot start"),
    ],
)
def test_process_runtime_translates_what_the_system_says_when_starting(
    tmp_path, monkeypatch, error, expected, said
):
    runtime = ProcessRuntime(tmp_path / "runtime")
    monkeypatch.setattr(process_module.proc, "spawn", failing_with(error))
    ref, web = contract_web(runtime)
    with pytest.raises(expected, match=said) as raised:
        runtime.start(ref, web)
    assert isinstance(raised.value, TemporaryError) is (expected is RuntimeUnavailable)


@pytest.mark.parametrize(
    ("error", "expected", "said"),
    [
        (OSError(errno.ENOSPC, "No space left on device"), RuntimeUnavailable, "now"),
        (PermissionError(errno.EACCES, "Permission denied"), Refused, "no right to write"),
        (OSError(errno.EROFS, "Read-only file system"), Refused, "no right to write"),
    ],
)
def test_process_runtime_translates_a_folder_it_cannot_write(
    tmp_path, monkeypatch, error, expected, said
):
    runtime = ProcessRuntime(tmp_path / "runtime")
    ref, web = contract_web(runtime)
    monkeypatch.setattr(Path, "mkdir", failing_with(error))
    with pytest.raises(expected, match=said):
        runtime.start(ref, web)
