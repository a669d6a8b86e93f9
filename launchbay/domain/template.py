"""Templates: what "production" is made of, parsed strictly from YAML.

A template names its services, how each runs on every runtime it supports, their
dependencies, health checks, endpoints, parameters and TTL policy. Every problem is
reported with file, line and field, and all problems of a file at once.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from launchbay.domain.composefile import read_compose_file
from launchbay.domain.durations import parse_duration
from launchbay.domain.errors import Invalid
from launchbay.domain.interpolation import (
    check_reference,
    interpolate,
    references,
    strings_with_paths,
)
from launchbay.domain.names import (
    ServiceName,
    TemplateName,
    is_identifier,
    parse_service_name,
    parse_template_name,
)
from launchbay.domain.plan import find_cycle, layers
from launchbay.domain.yamlsource import SourceMap, YamlError, load_yaml, validation_problems

# The sections a service may be written in, one per kind of runtime that runs it (the
# runtimes themselves are registered in `runtimes.registry`, each naming its section).
SECTIONS = ("process", "compose", "helm")


@dataclass(frozen=True)
class RunsOn:
    """A runtime as a template sees it: its name and the section of a service it runs."""

    runtime: str
    section: str


def _duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a duration: write a number with a unit, like 30s or 2h")
    try:
        return parse_duration(value)
    except Invalid as e:
        raise ValueError(e.message) from e


Duration = Annotated[timedelta, BeforeValidator(_duration)]


def _command(value: Any) -> Any:
    return shlex.split(value) if isinstance(value, str) else value


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HealthCheck(Strict):
    """How to tell a service is ready: exactly one of `http`, `tcp` or `command`."""

    http: str | None = Field(default=None, description="path answered with a status below 400")
    tcp: bool = False
    command: Annotated[list[str] | None, BeforeValidator(_command)] = None
    interval: Duration = timedelta(milliseconds=500)
    timeout: Duration = Field(
        default=timedelta(seconds=60), description="how long it may take to become healthy"
    )

    @model_validator(mode="after")
    def _one_kind(self) -> HealthCheck:
        kinds = [
            k for k, on in (("http", self.http), ("tcp", self.tcp), ("command", self.command)) if on
        ]
        if len(kinds) != 1:
            raise ValueError("a health check needs exactly one of http, tcp or command")
        if self.http is not None and not self.http.startswith("/"):
            raise ValueError(f"http health path {self.http!r} must start with '/'")
        return self


class Endpoint(Strict):
    name: str
    path: str = "/"
    port: int | None = Field(
        default=None, description="the container port it is on (a Compose file's service)"
    )


class ProcessSection(Strict):
    """A service as a local process: its command, environment and working folder."""

    command: Annotated[list[str], BeforeValidator(_command)] = Field(min_length=1)
    env: dict[str, str] = {}
    cwd: str | None = None

    @field_validator("env")
    @classmethod
    def _env_names(cls, env: dict[str, str]) -> dict[str, str]:
        for name in env:
            if not is_identifier(name):
                raise ValueError(f"{name!r} is not a valid environment variable name")
        return env


class HelmSection(Strict):
    """A service as a Helm release: a chart (folder, repository or oci://) and its values."""

    chart: str
    version: str | None = None
    repo: str | None = None
    values: dict[str, Any] = {}
    port: int | None = Field(default=None, description="the port its Service answers on")
    service: str | None = Field(default=None, description="its Service's name (else the release's)")


_PATTERN = re.compile(r"^[A-Za-z0-9_.*?\[\]-]+$")


class Overridable(Strict):
    """What a space may override in this service: its version (unless switched off), and
    only the env variables and helm values named here (exact names or shell-style patterns
    such as `FEATURE_*`). Nothing else: a space cannot change what the template runs."""

    version: bool = True
    env: list[str] = []
    values: list[str] = []

    @field_validator("env", "values")
    @classmethod
    def _patterns(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            if not _PATTERN.match(pattern):
                raise ValueError(f"{pattern!r} is not a name or a pattern like FEATURE_*")
        return patterns


class Service(Strict):
    description: str = ""
    version: str = Field(default="main", description="what this service runs unless overridden")
    overridable: Overridable = Overridable()
    depends_on: list[str] = []
    health: HealthCheck | None = None
    endpoints: list[Endpoint] = []
    process: ProcessSection | None = None
    compose: dict[str, Any] | None = None
    helm: HelmSection | None = None
    # A job, not a server: done once it exited 0 (never restarted then).
    one_shot: bool = False
    # Set from a template's Compose file, never written in a template.
    profiles: list[str] = []
    compose_file: str | None = None
    binds: dict[str, str] = {}  # bind source -> how spaces see it (`Bind.kind`)

    def has(self, section: str) -> bool:
        """Whether the service is written for runtimes that run `section`."""
        return section in SECTIONS and getattr(self, section) is not None

    def sections(self) -> list[str]:
        return [section for section in SECTIONS if self.has(section)]


class ComposeProject(Strict):
    """A team's own Compose file, run as it is: Compose orders, gates and wires the services."""

    file: str = Field(description="the Compose file, relative to the template's folder")
    services: list[str] = Field(default=[], description="only these (and what they need)")
    profiles: list[str] = Field(
        default=[], description="Compose profiles to enable; may name ${params.X} (a, b)"
    )
    shared_binds: list[str] = Field(
        default=[],
        description="bind sources, as the Compose file writes them, that every space shares; "
        "any other writable relative bind is each space's own copy",
    )


class TtlPolicy(Strict):
    default: Duration
    max: Duration

    @model_validator(mode="after")
    def _default_within_max(self) -> TtlPolicy:
        if self.default > self.max:
            raise ValueError("the default TTL is longer than the maximum")
        return self


class Param(Strict):
    default: str
    description: str = ""

    @field_validator("default", mode="before")
    @classmethod
    def _scalar(cls, value: Any) -> Any:
        return (
            str(value).lower()
            if isinstance(value, bool)
            else (str(value) if isinstance(value, int | float) else value)
        )


class Template(Strict):
    name: TemplateName
    description: str = ""
    trusted: bool = Field(
        default=False,
        description="an admin's mark: spaces may override the env variables that change how "
        "programs load (LD_*, PYTHON*, PATH, ...) where `overridable` lists them",
    )
    ttl: TtlPolicy
    params: dict[str, Param] = {}
    compose: ComposeProject | None = None
    services: dict[ServiceName, Service] = {}
    # Where the template was read from; `${template.dir}` resolves to its folder.
    source: str = Field(default="", exclude=True)

    @field_validator("name", mode="before")
    @classmethod
    def _name(cls, value: Any) -> Any:
        return _label(parse_template_name, value)

    @field_validator("services", mode="before")
    @classmethod
    def _service_names(cls, value: Any) -> Any:
        if isinstance(value, dict):
            for name in value:
                _label(parse_service_name, name)
        return value

    @field_validator("params")
    @classmethod
    def _param_names(cls, params: dict[str, Param]) -> dict[str, Param]:
        for name in params:
            if not is_identifier(name):
                raise ValueError(
                    f"parameter name {name!r} must be a letter or '_' then letters, digits or '_'"
                )
        return params

    @model_validator(mode="after")
    def _has_services(self) -> Template:
        if not self.services and self.compose is None:
            raise ValueError("a template needs `services`, or a `compose` file to take them from")
        return self

    @property
    def folder(self) -> Path:
        return Path(self.source).parent.resolve()

    def sections(self) -> list[str]:
        """The sections every service of this template is written in."""
        return [x for x in SECTIONS if all(s.has(x) for s in self.services.values())]

    def for_space(self, params: Mapping[str, str]) -> Template:
        """The template as one space runs it: of a Compose file, the services of the profiles
        it enables (`compose.profiles`, which may name the space's parameters) and what they
        need."""
        if self.compose is None:
            return self
        values = {f"params.{k}": v for k, v in params.items()}
        wanted = {
            p.strip()
            for entry in self.compose.profiles
            for p in interpolate(entry, values).replace(",", " ").split()
        }
        known = {p for s in self.services.values() for p in s.profiles}
        unknown = sorted(wanted - known)
        if unknown:
            raise Invalid(
                f"unknown Compose profile {unknown[0]!r}; template {self.name!r} has "
                f"{', '.join(sorted(known)) or 'none'}"
            )
        active: set[str] = {
            n for n, s in self.services.items() if not s.profiles or wanted & set(s.profiles)
        }
        active |= _needed(active, {n: s.depends_on for n, s in self.services.items()})
        return self.model_copy(
            update={
                "services": {n: s for n, s in self.services.items() if n in active},
                "compose": self.compose.model_copy(update={"profiles": sorted(wanted)}),
            }
        )

    def dependency_order(self) -> list[list[ServiceName]]:
        """Services in layers: each layer depends only on earlier ones."""
        return layers({name: s.depends_on for name, s in self.services.items()})


def _label(parse: Any, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return parse(value)
    except Invalid as e:
        raise ValueError(e.message) from e


def _semantic_problems(template: Template, source: SourceMap) -> list[str]:
    """Cross-field rules pydantic cannot see: dependencies, cycles, references."""
    problems: list[str] = []

    def problem(path: tuple[str | int, ...], message: str) -> None:
        field_name = ".".join(str(p) for p in path)
        problems.append(f"{source.file}:{source.line_of(path)}: {field_name}: {message}")

    names: set[str] = set(template.services)
    for name, service in template.services.items():
        for index, dep in enumerate(service.depends_on):
            if dep not in names:
                problem(("services", name, "depends_on", index), f"unknown service {dep!r}")
            elif dep == name:
                problem(
                    ("services", name, "depends_on", index), "a service cannot depend on itself"
                )
        if template.compose is None and not service.sections():
            problem(("services", name), f"has no runtime section ({', '.join(SECTIONS)})")
    cycle = find_cycle(
        {n: [d for d in s.depends_on if d in names] for n, s in template.services.items()}
    )
    if cycle:
        problem(("services", cycle[0], "depends_on"), "dependency cycle: " + " -> ".join(cycle))
    raw = template.model_dump(mode="json", include={"services", "params"})
    params = set(template.params)
    for path, text in strings_with_paths(raw):
        for ref in references(text):
            why = check_reference(ref, params=params, services=names)
            if why:
                problem(path, why)
    return problems


def parse_template(text: str, *, file: str, read: Callable[[Path], str] | None = None) -> Template:
    """Parse and validate one template; raises YamlError listing every problem found.

    A template with a `compose` file takes its services from it: `read` reads that file
    (without it, the template is checked alone)."""
    data, source = load_yaml(text, file=file)
    if not isinstance(data, dict):
        raise YamlError([f"{file}:1: a template is a mapping with name, ttl and services"])
    # `x-` keys hold what anchors (`&name`) share, as in Compose files; they mean nothing.
    data = {k: v for k, v in data.items() if not str(k).startswith("x-")}
    problems = [
        f"{file}:{source.line_of(('services', name, key))}: services.{name}.{key}: unknown key "
        f"{key!r} (it comes from the Compose file)"
        for name, raw in (data.get("services") or {}).items()
        if isinstance(raw, dict)
        for key in ("profiles", "compose_file", "binds")
        if key in raw
    ]
    if problems:
        raise YamlError(problems)
    try:
        template = Template.model_validate({**data, "source": file})
    except ValidationError as e:
        raise YamlError(validation_problems(e, source)) from None
    if template.compose is not None and read is not None:
        template = _with_compose_file(template, template.compose, source, read)
    problems = _semantic_problems(template, source)
    if problems:
        raise YamlError(problems)
    return template


def _with_compose_file(
    template: Template, project: ComposeProject, source: SourceMap, read: Callable[[Path], str]
) -> Template:
    """The template's services from its Compose file, each with the template's extras
    (endpoints, health gates, what a space may override, a compose overlay)."""
    path = (template.folder / project.file).resolve()
    line = source.line_of(("compose", "file"))
    try:
        text = read(path)
    except OSError as e:
        message = f"{source.file}:{line}: compose.file: cannot read {path}: {e.strerror}"
        raise YamlError([message]) from None
    document, compose_source = load_yaml(text, file=str(path))
    found = read_compose_file(document, compose_source)
    problems = [
        f"{source.file}:{source.line_of(('services', name))}: services.{name}: "
        f"not a service of {path.name} (it has {', '.join(found.services)})"
        for name in template.services
        if name not in found.services
    ] + [
        f"{source.file}:{source.line_of(('compose', 'services', i))}: compose.services.{i}: "
        f"not a service of {path.name}"
        for i, name in enumerate(project.services)
        if name not in found.services
    ]
    known = found.profiles()
    problems += [
        f"{source.file}:{source.line_of(('compose', 'profiles', i))}: compose.profiles.{i}: "
        f"unknown Compose profile {profile!r}; {path.name} has {', '.join(sorted(known)) or 'none'}"
        for i, profile in enumerate(project.profiles)
        if "${" not in profile and profile.strip() and profile.strip() not in known
    ]
    if problems:
        raise YamlError(problems)
    wanted = set(project.services) or set(found.services)
    wanted |= _needed(wanted, {n: list(s.depends_on) for n, s in found.services.items()})
    one_shot = found.one_shot()
    services: dict[ServiceName, Service] = {}
    for name, spec in found.services.items():
        if name not in wanted:
            continue
        extras = template.services.get(ServiceName(name), Service())
        services[ServiceName(name)] = extras.model_copy(
            update={
                "compose": dict(extras.compose or {}),
                "depends_on": list(spec.depends_on),
                "one_shot": extras.one_shot or name in one_shot,
                # It runs what its file says: a tag comes in as a parameter the file reads.
                "overridable": extras.overridable.model_copy(update={"version": False}),
                "profiles": list(spec.profiles),
                "compose_file": str(path),
                "binds": {b.source: b.kind(project.shared_binds) for b in spec.binds},
            }
        )
    return template.model_copy(
        update={"services": services, "compose": project.model_copy(update={"file": str(path)})}
    )


def _needed(names: set[str], graph: Mapping[str, Sequence[str]]) -> set[str]:
    """Everything `names` depend on, transitively."""
    needed: set[str] = set()
    todo = list(names)
    while todo:
        for dep in graph.get(todo.pop(), ()):
            if dep not in needed:
                needed.add(dep)
                todo.append(dep)
    return needed
