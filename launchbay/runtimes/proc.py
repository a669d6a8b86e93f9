"""The one place that starts subprocesses: captures output and keeps secrets out of it."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO


@dataclass(frozen=True)
class Result:
    code: int
    stdout: str
    stderr: str


def redact(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "****")
    return text


def run(
    command: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 120.0,
    input_text: str | None = None,
    secrets: Sequence[str] = (),
) -> Result:
    """Run to completion. Raises FileNotFoundError for a missing program and
    subprocess.TimeoutExpired past `timeout`; the caller turns both into its own errors."""
    completed = subprocess.run(
        list(command),
        env=dict(env) if env is not None else None,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        input=input_text,
        check=False,
    )
    return Result(
        code=completed.returncode,
        stdout=redact(completed.stdout, secrets),
        stderr=redact(completed.stderr, secrets),
    )


TimeoutExpired = subprocess.TimeoutExpired


# Children of this server process, by pid. They belong to the process, not to any runtime
# object, so they are kept here until they exit and are reaped.
_children: dict[int, subprocess.Popen[bytes]] = {}
_exit_codes: dict[int, int] = {}
_lock = threading.Lock()


def spawn(
    command: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path,
    log: IO[bytes],
) -> int:
    """Start a long-running process in a new session (its own process group), detached from
    the server: it survives a server crash and can be re-adopted after a restart."""
    child = subprocess.Popen(
        list(command),
        env=dict(env),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        close_fds=True,
        umask=0o022,  # the server's own umask (0077) is for its files, not the services'
    )
    with _lock:
        _children[child.pid] = child
    return child.pid


def reap(pid: int) -> int | None:
    """The exit code of a child of this process that has exited (reaping it), else None."""
    with _lock:
        child = _children.get(pid)
        if child is not None and child.poll() is not None:
            del _children[pid]
            _exit_codes[pid] = child.returncode
        return _exit_codes.get(pid)


def reap_all() -> None:
    with _lock:
        pids = list(_children)
    for pid in pids:
        reap(pid)
