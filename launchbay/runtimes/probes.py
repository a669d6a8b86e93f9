"""Health checks run from the host: an HTTP GET, a TCP connect, or a command."""

from __future__ import annotations

import http.client
import re
import socket
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from launchbay.domain.template import HealthCheck
from launchbay.runtimes import proc

PROBE_TIMEOUT = 2.0
_TAG = re.compile(r"<[^>]*>")
# Of the body of an unhealthy answer, this much is read for its first line.
BODY_READ = 4096


Confine = Callable[[Sequence[str]], tuple[list[str], Path]]
"""A command as it runs where the service runs (its sandbox), and the folder it starts in."""


def check(
    health: HealthCheck, *, host: str, port: int, env: Mapping[str, str], confine: Confine
) -> tuple[bool, str]:
    """(passed, detail) for one look at the service; a health command runs as the service
    does (`confine`), never as the server."""
    if health.command is not None:
        return _command(health.command, env=env, confine=confine)
    return network(health, host=host, port=port)


def network(health: HealthCheck, *, host: str, port: int) -> tuple[bool, str]:
    """An HTTP or TCP check (a command is the runtime's to run where the service runs)."""
    if health.http is not None:
        return _http(host, port, health.http)
    assert health.tcp
    return _tcp(host, port)


def _http(host: str, port: int, path: str) -> tuple[bool, str]:
    connection = http.client.HTTPConnection(host, port, timeout=PROBE_TIMEOUT)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        status = response.status
        said = _first_line(response.read(BODY_READ)) if status >= 400 else ""
    except OSError as e:  # refused, reset, timed out: what the system says, in words
        return False, f"GET {path}: {(e.strerror or str(e) or type(e).__name__).lower()}"
    except http.client.HTTPException as e:  # not HTTP: a closed connection, a bad status line
        return False, f"GET {path}: not an HTTP answer ({type(e).__name__})"
    finally:
        connection.close()
    return status < 400, f"GET {path}: {status}" + (f": {said}" if said else "")


def _first_line(body: bytes) -> str:
    """The first line of a response body with text in it (an HTML page's tags aside),
    which often says why (cut to 200 characters)."""
    text = body.decode("utf-8", "replace")
    line = next((t for x in text.splitlines() if (t := _TAG.sub("", x).strip())), "")
    return line if len(line) <= 200 else line[:199] + "..."


def _tcp(host: str, port: int) -> tuple[bool, str]:
    try:
        with socket.create_connection((host, port), timeout=PROBE_TIMEOUT):
            return True, f"tcp {port}: open"
    except OSError as e:
        return False, f"tcp {port}: {e.strerror or e}"


def _command(command: list[str], *, env: Mapping[str, str], confine: Confine) -> tuple[bool, str]:
    try:
        argv, cwd = confine(command)
        result = proc.run(argv, env=env, cwd=cwd, timeout=PROBE_TIMEOUT * 5)
    except FileNotFoundError:
        return False, f"health command not found: {command[0]}"
    except proc.TimeoutExpired:
        return False, "health command timed out"
    output = (result.stdout + result.stderr).strip().splitlines()
    return result.code == 0, f"exit {result.code}" + (f": {output[-1]}" if output else "")
