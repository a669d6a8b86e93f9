"""Host ports handed to spaces: a port is given long before its service binds it, so it
must be one no outgoing connection can take meanwhile (the kernel's ephemeral range) and
one no other space holds. Seen: "Address already in use" when a service started."""

from __future__ import annotations

import json
import socket

import pytest

from launchbay.domain.composefile import read_compose_file
from launchbay.domain.yamlsource import load_yaml
from launchbay.runtimes import hostports
from launchbay.runtimes.compose.ports import Ports
from launchbay.runtimes.process import ProcessRuntime
from tests.integration.test_runtime_contract import space


def ephemeral() -> range:
    low, high = (int(x) for x in hostports.EPHEMERAL_RANGE.read_text().split())
    return range(low, high + 1)


def test_process_ports_are_outside_the_ephemeral_range_and_never_shared_between_spaces(tmp_path):
    runtime = ProcessRuntime(tmp_path / "runtime")
    services = {name: None for name in ("web", "api", "db")}
    handed = [
        port
        for i in range(40)
        for port in (a.port for a in runtime.addresses(space(f"s-{i}"), services).values())
    ]
    assert len(set(handed)) == len(handed)
    assert not [port for port in handed if port in ephemeral()]
    again = runtime.addresses(space("s-7"), services)
    assert [a.port for a in again.values()] == handed[21:24]  # kept for the space's life


def test_compose_ports_are_outside_the_ephemeral_range_and_never_shared_between_spaces(tmp_path):
    ports = Ports(tmp_path)
    found = read_compose_file(
        *load_yaml(
            "services:\n  web:\n    image: x\n    ports: ['8080', '9090']\n  db:\n    image: y\n",
            file="compose.yaml",
        )
    )
    handed: list[int] = []
    for i in range(30):
        (tmp_path / f"p-{i}").mkdir()
        handed += ports.of_project(f"p-{i}", found, ["web", "db"])["web"].values()
        (tmp_path / f"r-{i}").mkdir()
        ports.reserve(f"r-{i}", {"web": 80, "worker": None})
        handed.append(ports.of(f"r-{i}", "web") or 0)
    assert len(set(handed)) == len(handed) == 90
    assert not [port for port in handed if port in ephemeral()]


def test_a_port_something_listens_on_or_a_space_holds_is_not_handed_out():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        busy = listener.getsockname()[1]
        three = range(busy, busy + 3)
        assert hostports.pick("127.0.0.1", {busy + 1}, three) == busy + 2
        with pytest.raises(OSError, match=f"no free port left in {busy}-{busy + 1}"):
            hostports.pick("127.0.0.1", {busy + 1}, range(busy, busy + 2))


@pytest.mark.parametrize(
    ("kernel", "given"),
    [
        ((32768, 60999), range(20768, 32768)),  # Linux's default: just below
        ((15000, 40000), range(40001, 52001)),  # no room below: just above
        ((1024, 65535), range(10000, 22000)),  # everything ephemeral: best effort
    ],
)
def test_service_ports_sit_beside_the_kernels_ephemeral_range(kernel, given):
    assert hostports.service_ports(kernel) == given


def test_held_ports_are_read_from_every_spaces_file_and_a_broken_file_is_skipped(tmp_path):
    for name, body in {
        "a": {"web": 20001},
        "b": {"web": {"8080": 20002, "9090": 20003}},
        "c": "{not json",
    }.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "ports.json").write_text(
            body if isinstance(body, str) else json.dumps(body)
        )
    assert hostports.held(tmp_path) == {20001, 20002, 20003}
