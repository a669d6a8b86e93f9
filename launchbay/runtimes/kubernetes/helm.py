"""The helm CLI (v3 or v4): render, install, uninstall. Its errors become Launchbay's."""

from __future__ import annotations

import contextlib
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from launchbay.domain.template import HelmSection
from launchbay.runtimes import goyaml, proc
from launchbay.runtimes.base import RuntimeUnavailable, ServiceFailed

_VERSION = re.compile(r"v?(\d+)\.(\d+)\.(\d+)")


def default_binary() -> str:
    """helm on the PATH, else the one installed beside this Python (`scripts/install_helm.py`
    puts it there)."""
    beside = Path(sys.executable).parent / "helm"
    return shutil.which("helm") or (str(beside) if beside.exists() else "helm")


class Helm:
    def __init__(
        self,
        binary: str | None = None,
        *,
        env: Mapping[str, str] | None = None,
        timeout: float = 600,
    ) -> None:
        self.binary = binary or default_binary()
        self.env = dict(env) if env is not None else None
        self.timeout = timeout
        self._major: int | None = None

    def major_version(self) -> int:
        """3 or 4: the flags that differ between them are chosen from this."""
        if self._major is None:
            result = self._run(["version", "--short"], service=None)
            match = _VERSION.search(result.stdout)
            if not match or int(match.group(1)) not in (3, 4):
                raise RuntimeUnavailable(
                    f"helm v3 or v4 is needed; `helm version` said {result.stdout.strip()!r}"
                )
            self._major = int(match.group(1))
        return self._major

    def template(
        self,
        *,
        release: str,
        namespace: str,
        section: HelmSection,
        values: Mapping[str, Any],
        service: str,
    ) -> list[dict[str, Any]]:
        """The manifests a release would install, parsed."""
        with _values_file(values) as path:
            result = self._run(
                [
                    "template",
                    release,
                    *self._chart(section),
                    "--namespace",
                    namespace,
                    "--values",
                    str(path),
                ],
                service=service,
            )
        return [doc for doc in yaml.safe_load_all(result.stdout) if doc]

    def install(
        self,
        *,
        release: str,
        namespace: str,
        section: HelmSection,
        values: Mapping[str, Any],
        service: str,
    ) -> None:
        """Install or upgrade. The engine waits for health itself, through the runtime's probe."""
        with _values_file(values) as path:
            self._run(
                [
                    "upgrade",
                    "--install",
                    release,
                    *self._chart(section),
                    "--namespace",
                    namespace,
                    "--values",
                    str(path),
                ],
                service=service,
            )

    def lint(self, chart: Path) -> list[str]:
        """What `helm lint --strict` finds wrong with a local chart, one line each."""
        result = self._run(["lint", "--strict", str(chart)], service=None, check=False)
        if result.code == 0:
            return []
        found = [
            line.strip()
            for line in (result.stdout + result.stderr).splitlines()
            if line.strip().startswith(("[ERROR]", "[WARNING]", "Error:"))
        ]
        return found or [_last(result.stdout + result.stderr)]

    def manifest(self, *, release: str, namespace: str) -> list[dict[str, Any]]:
        """What the release installed (its hooks aside), parsed; empty if there is none."""
        result = self._run(
            ["get", "manifest", release, "--namespace", namespace], service=None, check=False
        )
        if result.code != 0:
            if "not found" in result.stderr:
                return []
            raise RuntimeUnavailable(f"helm get manifest failed: {_last(result.stderr)}")
        return [doc for doc in yaml.safe_load_all(result.stdout) if doc]

    def releases(self, namespace: str) -> list[str]:
        """The releases in a namespace, newest first (so uninstalling goes in reverse order)."""
        result = self._run(
            ["list", "--namespace", namespace, "--short", "--date", "--reverse"], service=None
        )
        return [line.strip() for line in result.stdout.splitlines() if line.strip()]

    def uninstall(self, *, release: str, namespace: str, service: str) -> None:
        result = self._run(
            ["uninstall", release, "--namespace", namespace, "--ignore-not-found"],
            service=service,
            check=False,
        )
        if result.code != 0 and "not found" not in result.stderr:
            raise ServiceFailed(service, f"helm uninstall failed: {_last(result.stderr)}")

    def _chart(self, section: HelmSection) -> list[str]:
        args = [section.chart]
        if section.repo:
            args += ["--repo", section.repo]
        if section.version:
            args += ["--version", section.version]
        return args

    def _run(self, args: Sequence[str], *, service: str | None, check: bool = True) -> proc.Result:
        try:
            result = proc.run([self.binary, *args], env=self.env, timeout=self.timeout)
        except FileNotFoundError as e:
            raise RuntimeUnavailable(f"helm is not installed (looked for {self.binary!r})") from e
        except proc.TimeoutExpired as e:
            raise RuntimeUnavailable(f"helm {args[0]} did not finish in {self.timeout:.0f}s") from e
        if check and result.code != 0:
            message = f"helm {args[0]} failed: {_last(result.stderr)}"
            if service is None:
                raise RuntimeUnavailable(message)
            raise ServiceFailed(service, message)
        return result


def _last(text: str, count: int = 6) -> str:
    return "\n".join(text.strip().splitlines()[-count:]) or "(no output)"


@contextlib.contextmanager
def _values_file(values: Mapping[str, Any]) -> Iterator[Path]:
    """Values go to helm as a file (mode 0600), never on the command line: they may hold secrets."""
    with tempfile.TemporaryDirectory(prefix="launchbay-values-") as folder:
        path = Path(folder) / "values.yaml"
        path.touch(mode=0o600)
        path.write_text(goyaml.dump(dict(values)))
        yield path
