"""The server's one settings tree: a YAML file, environment variables and flags, read here
and nowhere else.

A section per concern: `server:`, `database:`, `engine:`, one per runtime (`process:`,
`kubernetes:`, declared by the runtime's own module), `github:` and `notifications:`. Flags
override the environment, which overrides the file, which overrides the defaults; each
default is defined once, in the section (or the dataclass the section fills). Any key can
come from the environment as `LAUNCHBAY_<SECTION>__<KEY>` (`LAUNCHBAY_SERVER__PORT=9000`),
and a few have short names of their own (`LAUNCHBAY_DB`). A mistake names where the value
came from: the file's line and key, the variable or the flag.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from launchbay.api.follows import FollowLimits
from launchbay.api.guard import DEFAULT_MAX_BODY
from launchbay.domain.durations import format_duration, parse_duration
from launchbay.domain.errors import Invalid
from launchbay.domain.notices import NotifyConfig
from launchbay.domain.urls import origin_only, redacted
from launchbay.domain.webhooks import GitHubConfig
from launchbay.domain.yamlsource import SourceMap, YamlError, load_yaml, validation_problems
from launchbay.engine.audit import DEFAULT_KEEP
from launchbay.engine.engine import EngineSettings
from launchbay.engine.keys import DEFAULT_MAX_LIFE
from launchbay.engine.quotas import QuotaSettings
from launchbay.runtimes.kubernetes.kind import KubernetesSection
from launchbay.runtimes.process import ProcessSection

DEFAULT_PORT = 8470
ENV_PREFIX = "LAUNCHBAY_"
# Environment variables older than the tree, each the short name of one key.
ENV_NAMES: Mapping[str, tuple[str, str]] = {
    "LAUNCHBAY_DB": ("database", "url"),
    "LAUNCHBAY_NAMESPACE_PREFIX": ("kubernetes", "namespace_prefix"),
    "LAUNCHBAY_BASE_DOMAIN": ("kubernetes", "base_domain"),
}
_ENGINE = EngineSettings()
_FOLLOWS = FollowLimits()


def _duration(value: str) -> str:
    try:
        parse_duration(value)
    except Invalid as e:
        raise ValueError(e.message) from None
    return value


Duration = Annotated[str, AfterValidator(_duration)]
"""A duration as written in the file (`90d`, `1h30m`), checked when read."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerSection(Section):
    host: str = "127.0.0.1"
    port: int = Field(default=DEFAULT_PORT, ge=1, le=65535)
    data_dir: Path | None = Field(default=None, description="default: the XDG data dir")
    templates: Path = Path("templates")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # Host names requests may carry besides the loopback ones (DNS rebinding).
    allowed_hosts: tuple[str, ...] = ()
    max_body: int = Field(default=DEFAULT_MAX_BODY, ge=1024)
    max_follows: int = Field(default=_FOLLOWS.total, ge=1)
    max_follows_per_user: int = Field(default=_FOLLOWS.per_user, ge=1)
    # Runtimes only admins may use; None: those whose services would run unconfined.
    admin_only_runtimes: tuple[str, ...] | None = None


class DatabaseSection(Section):
    url: str | None = Field(default=None, description="default: SQLite in the data dir")


class EngineSection(Section):
    reconcile_interval: float = Field(default=_ENGINE.reconcile_interval, gt=0)
    sweep_interval: float = Field(default=_ENGINE.sweep_interval, gt=0)
    orphan_grace: float = Field(default=_ENGINE.orphan_grace, ge=0)
    workers: int = Field(default=_ENGINE.workers, ge=1, le=256)
    min_ttl: Duration = format_duration(_ENGINE.min_ttl)
    copilot: bool = _ENGINE.copilot

    def engine(self) -> EngineSettings:
        return EngineSettings(
            reconcile_interval=self.reconcile_interval,
            sweep_interval=self.sweep_interval,
            orphan_grace=self.orphan_grace,
            workers=self.workers,
            copilot=self.copilot,
            min_ttl=parse_duration(self.min_ttl),
        )


class AuthSection(Section):
    key_max_life: Duration = Field(
        default=format_duration(DEFAULT_MAX_LIFE),
        description="the longest life an API key may be given (every key has an expiry)",
    )


class AuditSection(Section):
    keep: Duration = Field(
        default=format_duration(DEFAULT_KEEP), description="how long audit records are kept"
    )


class QuotasSection(Section):
    spaces_per_user: int | None = Field(
        default=None, ge=0, description="spaces a user may have at once; null: no limit"
    )
    exempt_templates: tuple[str, ...] = Field(default=(), description="templates not counted")

    def settings(self) -> QuotaSettings:
        return QuotaSettings(self.spaces_per_user, frozenset(self.exempt_templates))


class SettingsTree(Section):
    server: ServerSection = Field(default_factory=ServerSection)
    database: DatabaseSection = Field(default_factory=DatabaseSection)
    engine: EngineSection = Field(default_factory=EngineSection)
    auth: AuthSection = Field(default_factory=AuthSection)
    audit: AuditSection = Field(default_factory=AuditSection)
    quotas: QuotasSection = Field(default_factory=QuotasSection)
    process: ProcessSection = Field(default_factory=ProcessSection)
    kubernetes: KubernetesSection = Field(default_factory=KubernetesSection)
    github: GitHubConfig | None = None
    notifications: NotifyConfig = Field(default_factory=NotifyConfig)


@dataclass(frozen=True)
class Given:
    """One value from outside the file: its key's path and where it came from."""

    path: tuple[str, str]
    value: object
    origin: str  # "--port", "LAUNCHBAY_DB"


@dataclass
class Sources:
    file: Path | None = None
    flags: list[Given] = field(default_factory=list)
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))


def load(sources: Sources) -> SettingsTree:
    """The effective settings; every mistake at once, each naming where it came from."""
    data: dict[str, Any] = {}
    source = SourceMap(file=str(sources.file or "(defaults)"))
    if sources.file is not None:
        data, source = _read(sources.file)
    given = _from_environ(sources.environ) + list(sources.flags)
    for one in given:
        section = data.setdefault(one.path[0], {})
        if not isinstance(section, dict):
            raise YamlError(
                [f"{source.file}:{source.line_of(one.path[:1])}: {one.path[0]}: must be a mapping"]
            )
        section[one.path[1]] = one.value
    try:
        return SettingsTree.model_validate(data)
    except ValidationError as e:
        raise YamlError(_problems(e, source, given)) from None


def _read(path: Path) -> tuple[dict[str, Any], SourceMap]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise Invalid(f"cannot read the config file {path}: {e}") from e
    data, source = load_yaml(text, file=str(path))
    if not isinstance(data, dict):
        raise YamlError([f"{path}:1: (top): must be a mapping of sections"])
    return data, source


def _from_environ(environ: Mapping[str, str]) -> list[Given]:
    """`LAUNCHBAY_<SECTION>__<KEY>` for any key, and the short names of a few."""
    given = [
        Given(path, environ[name], name) for name, path in ENV_NAMES.items() if environ.get(name)
    ]
    sections = set(SettingsTree.model_fields)
    for name, value in sorted(environ.items()):
        section, sep, key = name.removeprefix(ENV_PREFIX).lower().partition("__")
        # An empty variable is not given (a template that expands an unset one, as the
        # short names are read too).
        if name.startswith(ENV_PREFIX) and sep and section in sections and key and value:
            given.append(Given((section, key), _scalar(value, section, key), name))
    return given


def _scalar(text: str, section: str, key: str) -> object:
    """An environment value as YAML reads it (`9000`, `true`, `[a, b]`), except for a key
    that holds text or a path, which takes it as it is (`093849`, `~` stay as written)."""
    if _holds_text(section, key):
        return text
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _holds_text(section: str, key: str) -> bool:
    fields: dict[str, Any] = {}
    for model in _unwrapped(SettingsTree.model_fields[section].annotation):
        fields |= getattr(model, "model_fields", {})
    return (
        key in fields
        and bool(_unwrapped(fields[key].annotation))
        and all(kind in (str, Path) for kind in _unwrapped(fields[key].annotation))
    )


def _unwrapped(annotation: Any) -> list[Any]:
    """The kinds an annotation allows, None left out (`GitHubConfig | None`: GitHubConfig)."""
    kinds = get_args(annotation) if isinstance(annotation, UnionType) else (annotation,)
    return [kind for kind in kinds if kind is not type(None)]


def _problems(error: ValidationError, source: SourceMap, given: list[Given]) -> list[str]:
    origins = {one.path: one.origin for one in given}
    from_file = validation_problems(error, source)
    problems = []
    for item, in_file in zip(error.errors(), from_file, strict=True):
        origin = origins.get(tuple(str(p) for p in item["loc"][:2]))  # type: ignore[arg-type]
        problems.append(f"{origin}: {in_file.split(': ', 1)[1]}" if origin else in_file)
    return problems


# -- what --print-config shows --------------------------------------------------------------


def printable(tree: SettingsTree) -> str:
    """The effective settings as a file that would make them, every secret redacted."""
    return yaml.safe_dump(shown(tree), sort_keys=False)


def shown(tree: SettingsTree) -> dict[str, Any]:
    """The settings as plain data with every secret redacted: the database URL's password
    and secret parameters, and all but the origin of every channel URL (a Slack webhook's
    path is its secret). Secrets named by `*_env` and `*_file` are references, shown."""
    data = tree.model_dump(mode="json")
    url = data["database"]["url"]
    if url:
        data["database"]["url"] = redacted(url)
    for channel in data["notifications"]["channels"]:
        channel["url"] = origin_only(channel["url"])
    return data
