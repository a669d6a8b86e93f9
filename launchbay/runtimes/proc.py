"""The one place that starts subprocesses: captures output and keeps secrets out of it."""

from __future__ import annotations

import subprocess
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


def spawn(
    command: Sequence[str], *, env: Mapping[str, str], cwd: Path, log: IO[bytes]
) -> subprocess.Popen[bytes]:
    """Start a long-running process in a new session (its own process group), detached from
    the server: it survives a server crash and can be re-adopted after a restart."""
    return subprocess.Popen(
        list(command),
        env=dict(env),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        close_fds=True,
    )


Popen = subprocess.Popen
