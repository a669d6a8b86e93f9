"""The templates folder, re-read when its files change (GitOps: a merge is a deploy)."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from launchbay.domain.errors import Invalid, NotFound
from launchbay.domain.template import Template, parse_template
from launchbay.domain.yamlsource import YamlError, load_yaml

log = logging.getLogger(__name__)


def read_template(path: Path) -> Template:
    """Read and validate one template file."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise YamlError([f"{path}:1: not UTF-8 text"]) from e
    except OSError as e:
        raise YamlError([f"{path}:1: cannot read: {e.strerror}"]) from e
    return parse_template(text, file=str(path), read=lambda p: p.read_text(encoding="utf-8"))


class TemplateCatalog:
    """Valid templates by name, and the problems of the files that are not valid."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._lock = threading.Lock()
        self._stamp: tuple[tuple[str, float, int], ...] | None = None
        self._templates: dict[str, Template] = {}
        self._problems: dict[str, list[str]] = {}
        self._compose_files: list[Path] = []
        self._broken: dict[str, list[str]] = {}

    def all(self) -> list[Template]:
        self._refresh()
        return sorted(self._templates.values(), key=lambda t: t.name)

    def problems(self) -> dict[str, list[str]]:
        self._refresh()
        return dict(self._problems)

    def get(self, name: str) -> Template:
        self._refresh()
        template = self._templates.get(name)
        if template is None and name in self._broken:
            raise Invalid(f"template {name!r} is not valid: " + "; ".join(self._broken[name]))
        if template is None:
            known = ", ".join(sorted(self._templates)) or "none"
            raise NotFound(f"no template named {name!r} (known: {known})")
        return template

    def _files(self) -> list[Path]:
        if not self.folder.is_dir():
            return []
        return sorted(
            p for p in self.folder.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file()
        )

    def _refresh(self) -> None:
        files = self._files()
        # A template's Compose file is part of it: a change to either re-reads both.
        stamp = tuple(_stamp(p) for p in [*files, *self._compose_files])
        with self._lock:
            if stamp == self._stamp:
                return
            templates: dict[str, Template] = {}
            problems: dict[str, list[str]] = {}
            compose_files: list[Path] = []
            broken: dict[str, list[str]] = {}
            for path in files:
                try:
                    template = read_template(path)
                except YamlError as e:
                    problems[str(path)] = e.problems
                    broken.update(dict.fromkeys(_raw(path, "name"), e.problems))
                    # A Compose file that is missing or wrong now is watched all the same:
                    # fixing it makes the template valid without touching the template.
                    compose_files += _compose_file_named(path)
                    continue
                if template.compose is not None:
                    compose_files.append(Path(template.compose.file))
                if template.name in templates:
                    other = templates[template.name].source
                    problems[str(path)] = [
                        f"{path}:1: name: template {template.name!r} is also defined in {other}"
                    ]
                    continue
                templates[template.name] = template
            for file, found in problems.items():
                log.warning("template %s is invalid: %s", file, "; ".join(found))
            self._compose_files = compose_files
            if self._compose_files:
                stamp = tuple(_stamp(p) for p in [*files, *self._compose_files])
            self._broken = {n: p for n, p in broken.items() if n not in templates}
            self._templates, self._problems, self._stamp = templates, problems, stamp


def _stamp(path: Path) -> tuple[str, float, int]:
    try:
        info = path.stat()
    except OSError:
        return (str(path), 0.0, -1)
    return (str(path), info.st_mtime, info.st_size)


def _compose_file_named(path: Path) -> list[Path]:
    """The Compose file a template names, if it names one."""
    return [(path.parent / file).resolve() for file in _raw(path, "compose", "file")]


def _raw(path: Path, *keys: str) -> list[str]:
    """A string at `keys` in a template file's raw YAML (for templates that are not valid)."""
    try:
        value: object = load_yaml(path.read_text(encoding="utf-8"), file=str(path))[0]
    except (YamlError, OSError, UnicodeDecodeError):
        return []
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return [value] if isinstance(value, str) else []
