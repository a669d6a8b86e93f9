"""The team's own Compose file: read as Launchbay must know it (cached while it is
unchanged), and checked before any space runs it: Compose's own verdict, with and without
the template's overlay, and every bind source it mounts."""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from launchbay.domain.composefile import ComposeFile, bind_source, read_compose_file
from launchbay.domain.errors import Invalid, Refused
from launchbay.domain.interpolation import REFERENCE
from launchbay.domain.template import Template
from launchbay.domain.yamlsource import YamlError, load_yaml
from launchbay.runtimes import goyaml
from launchbay.runtimes.compose.commands import ComposeCli, telling_lines


class TeamFiles:
    def __init__(self, cli: ComposeCli) -> None:
        self.cli = cli
        self._valid: set[tuple[str, float, int, str]] = set()
        self._files: dict[str, tuple[tuple[str, float, int], ComposeFile]] = {}

    def read(self, path: Path) -> ComposeFile:
        """The team's Compose file as Launchbay reads it, re-read when it changes."""
        try:
            stamp = (str(path), *_file_stamp(path))
            cached = self._files.get(stamp[0])
            if cached is not None and cached[0] == stamp:
                return cached[1]
            document, source = load_yaml(path.read_text(encoding="utf-8"), file=str(path))
            found = read_compose_file(document, source)
            self._files[stamp[0]] = (stamp, found)
            return found
        except OSError as e:
            raise Refused(f"cannot read the Compose file {path}: {e.strerror}") from e
        except YamlError as e:
            raise Refused(e.message) from e

    def check(self, template: Template) -> None:
        """Compose's own verdict on the team's file (cached while the file is unchanged),
        then every bind source the space's services mount: refused before anything runs."""
        if template.compose is None:
            return
        path = Path(template.compose.file)
        found = self.read(path)
        overlay = {
            "services": {
                name: _literal(service.compose)
                for name, service in template.services.items()
                if service.compose
            }
        }
        stamp = (str(path), *_file_stamp(path), json.dumps(overlay, sort_keys=True, default=str))
        if stamp not in self._valid:
            self._validate(path, overlay, template.source)
            self._valid.add(stamp)
        check_binds(found, list(template.services), template.compose.shared_binds)

    def _validate(self, path: Path, overlay: dict[str, Any], source: str) -> None:
        """`docker compose config --quiet` of the team's file, then with the template's
        overlay merged over it: each refusal says whose file and which line."""
        run = self.cli.run
        result = run(["--file", str(path), "--profile", "*", "config", "--quiet"], timeout=60)
        if result.code != 0:
            raise Invalid(_compose_problem(result.stderr, path))
        if not overlay["services"]:
            return
        with tempfile.TemporaryDirectory(prefix="launchbay-overlay-") as folder:
            ours = Path(folder) / "overlay.yaml"
            ours.write_text(goyaml.dump(overlay))
            result = run(
                ["--file", str(path), "--file", str(ours), "--profile", "*", "config", "--quiet"],
                timeout=60,
            )
        if result.code != 0:
            said = telling_lines(result.stderr).replace(str(ours), "the template's overlay")
            raise Invalid(
                f"{source}: the template's compose: sections: Compose refuses them: {said}"
            )


def check_binds(found: ComposeFile, services: Sequence[str], shared: Sequence[str]) -> None:
    """A shared bind source that does not exist is refused: Docker would create it as
    an empty folder, and the service would run on nothing. (A space's own copy of a
    missing one starts empty, as Compose would make it.)"""
    folder = str(Path(found.file).parent)
    for name in services:
        for bind in found.services[name].binds:
            path = Path(bind_source(bind.source, folder)).expanduser()
            if not bind.own_copy(shared) and not path.exists():
                raise Refused(
                    f"{found.file}: service {name!r} mounts {bind.source} ({path}), "
                    "which does not exist"
                )


def _file_stamp(path: Path) -> tuple[float, int]:
    info = path.stat()
    return info.st_mtime, info.st_size


def _compose_problem(stderr: str, path: Path) -> str:
    """Compose's complaint about a file, with the line it is about where it names a field
    (`services.web.ports` ...); Compose's schema errors name fields, not lines."""
    said = telling_lines(stderr, count=8)
    match = re.search(r"\b(services|networks|volumes|secrets|configs)\.([\w.-]+)", said)
    line = 1
    if match:
        _, source = load_yaml(path.read_text(encoding="utf-8"), file=str(path))
        parts = [match.group(1), *match.group(2).split(".")]
        extra = re.search(r"additional propert(?:y|ies) '([^']+)'", said)
        if extra:  # the key Compose does not know, not the service it is in
            parts.append(extra.group(1))
        line = source.line_of(tuple(parts))
    return f"{path}:{line}: Compose refuses the file: {said}"


def _literal(section: Any) -> Any:
    """A template's compose section for Compose to check before any space exists: its
    Launchbay references (`${services.db.url}`) written as literals Compose leaves alone."""
    if isinstance(section, str):
        return REFERENCE.sub(lambda m: m.group(0) if m.group(1) else "$" + m.group(0), section)
    if isinstance(section, list):
        return [_literal(item) for item in section]
    if isinstance(section, dict):
        return {key: _literal(value) for key, value in section.items()}
    return section
