"""What the tests started and left running: processes and containers found by Launchbay's
labels and by the test folders they run in. The end of the run fails if there is any."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Leftover:
    kind: str  # "process" or "container"
    id: str
    what: str

    def __str__(self) -> str:
        return f"{self.kind} {self.id}: {self.what}"


def _under(text: str, roots: list[str]) -> bool:
    return any(root + "/" in text + "/" for root in roots)


def leftover_processes(roots: list[Path]) -> list[Leftover]:
    """Live processes labelled by the process runtime under `roots`, or whose command line
    names a path under them (servers, demo scripts, browsers with a test profile)."""
    names = [str(r.resolve()) for r in roots]
    mine = {os.getpid(), os.getppid()}
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in mine:
            continue
        try:
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if state in ("Z", "X"):
            continue
        command = " ".join(a.decode(errors="replace") for a in argv if a)
        labels = dict(item.decode(errors="replace").partition("=")[::2] for item in environ if item)
        root = labels.get("LAUNCHBAY_ROOT", "")
        if root and _under(root, names):
            what = (
                f"space {labels.get('LAUNCHBAY_SPACE')} service {labels.get('LAUNCHBAY_SERVICE')}"
            )
            found.append(Leftover("process", entry.name, f"{what}: {command[:160]}"))
        elif _under(command, names):
            found.append(Leftover("process", entry.name, command[:200]))
    return found


def leftover_containers(roots: list[Path]) -> list[Leftover]:
    """Containers with Launchbay's labels whose runtime root is under `roots`."""
    names = [str(r.resolve()) for r in roots]
    try:
        listed = subprocess.run(
            [
                "docker",
                "ps",
                "-a",
                "--filter",
                "label=dev.launchbay.managed-by=launchbay",
                "--format",
                "{{json .}}",
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return []
    found = []
    for line in listed.stdout.splitlines():
        container = json.loads(line)
        labels = dict(
            pair.partition("=")[::2] for pair in container.get("Labels", "").split(",") if pair
        )
        if _under(labels.get("dev.launchbay.root", ""), names):
            found.append(Leftover("container", container["ID"], container.get("Names", "")))
    return found


def find_leftovers(roots: list[Path], *, settle: float = 5.0) -> list[Leftover]:
    """Everything still alive under `roots`, after giving exits in progress `settle` seconds."""
    deadline = time.monotonic() + settle
    while True:
        found = leftover_processes(roots) + leftover_containers(roots)
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.25)


def remove(leftovers: list[Leftover]) -> None:
    """Kill and remove what was found, so that one failed run does not spoil the next."""
    for item in leftovers:
        if item.kind == "process":
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(item.id), signal.SIGKILL)
        else:
            subprocess.run(
                ["docker", "rm", "-f", "-v", item.id], capture_output=True, timeout=60, check=False
            )
