"""Host ports for services. A port is handed to a space long before its service binds it,
so it comes from below the kernel's ephemeral range (where no outgoing connection is given
it meanwhile) and is never one that another space of the runtime holds already."""

from __future__ import annotations

import errno
import json
import secrets
import socket
from collections.abc import Collection, Iterator
from pathlib import Path

EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
LOWEST = 10_000
WIDTH = 12_000


def service_ports(ephemeral: tuple[int, int] | None = None) -> range:
    """The ports services are given: the WIDTH ports below the ephemeral range, or above it
    when it starts too low to leave room."""
    low, high = ephemeral or _ephemeral()
    if low - WIDTH >= LOWEST:
        return range(low - WIDTH, low)
    if high + 1 + WIDTH <= 65_536:
        return range(high + 1, high + 1 + WIDTH)
    return range(LOWEST, LOWEST + WIDTH)  # the ephemeral range covers everything: best effort


def pick(host: str, taken: Collection[int], ports: range | None = None) -> int:
    """A port of `ports` that no space holds and that binds on `host` now."""
    ports = ports or service_ports()
    start = secrets.randbelow(len(ports))
    for i in range(len(ports)):
        port = ports[(start + i) % len(ports)]
        if port not in taken and _binds(host, port):
            return port
    raise OSError(errno.EADDRINUSE, f"no free port left in {ports.start}-{ports.stop - 1}")


def held(root: Path) -> set[int]:
    """Every port that a space under `root` holds in its `ports.json`."""
    found: set[int] = set()
    for path in root.glob("*/ports.json"):
        try:
            found.update(_numbers(json.loads(path.read_text())))
        except (OSError, ValueError):
            continue  # a space being removed, or a file half written by a crash
    return found


def _numbers(value: object) -> Iterator[int]:
    if isinstance(value, int) and not isinstance(value, bool):
        yield value
    elif isinstance(value, dict):
        for inner in value.values():
            yield from _numbers(inner)


def _binds(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _ephemeral() -> tuple[int, int]:
    try:
        low, high = EPHEMERAL_RANGE.read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32_768, 60_999  # Linux's default
