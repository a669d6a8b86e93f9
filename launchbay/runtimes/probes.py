"""Health checks run from the host: an HTTP GET, a TCP connect, or a command."""

from __future__ import annotations

import http.client
import socket
from collections.abc import Mapping
from pathlib import Path

from launchbay.domain.template import HealthCheck
from launchbay.runtimes import proc

PROBE_TIMEOUT = 2.0


def check(
    health: HealthCheck, *, host: str, port: int, env: Mapping[str, str], cwd: Path
) -> tuple[bool, str]:
    """(passed, detail) for one look at the service."""
    if health.http is not None:
        return _http(host, port, health.http)
    if health.tcp:
        return _tcp(host, port)
    assert health.command is not None
    return _command(health.command, env=env, cwd=cwd)


def _http(host: str, port: int, path: str) -> tuple[bool, str]:
    connection = http.client.HTTPConnection(host, port, timeout=PROBE_TIMEOUT)
    try:
        connection.request("GET", path)
        status = connection.getresponse().status
    except (OSError, http.client.HTTPException) as e:
        return False, f"GET {path}: {e.__class__.__name__}: {e}"
    finally:
        connection.close()
    return status < 400, f"GET {path}: {status}"


def _tcp(host: str, port: int) -> tuple[bool, str]:
    try:
        with socket.create_connection((host, port), timeout=PROBE_TIMEOUT):
            return True, f"tcp {port}: open"
    except OSError as e:
        return False, f"tcp {port}: {e.strerror or e}"


def _command(command: list[str], *, env: Mapping[str, str], cwd: Path) -> tuple[bool, str]:
    try:
        result = proc.run(command, env=env, cwd=cwd, timeout=PROBE_TIMEOUT * 5)
    except FileNotFoundError:
        return False, f"health command not found: {command[0]}"
    except proc.TimeoutExpired:
        return False, "health command timed out"
    output = (result.stdout + result.stderr).strip().splitlines()
    return result.code == 0, f"exit {result.code}" + (f": {output[-1]}" if output else "")


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port
