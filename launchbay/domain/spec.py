"""A space's wanted state: its template with parameters, overrides and addresses filled in."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from launchbay.domain.durations import format_duration, parse_duration
from launchbay.domain.errors import Invalid
from launchbay.domain.interpolation import interpolate_tree
from launchbay.domain.names import ServiceName, SpaceName
from launchbay.domain.overrides import Limits, check_override, check_values
from launchbay.domain.template import RunsOn, Service, Template, TtlPolicy

Overrides = dict[str, dict[str, str]]

_OVERRIDE_KEYS = "version, env.NAME or values.PATH"
DEFAULT_LIMITS = Limits()


@dataclass(frozen=True)
class Address:
    """Where a service answers: `host:port` as other services of the space reach it."""

    host: str
    port: int
    scheme: str = "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"


@dataclass(frozen=True)
class ResolvedService:
    """One service with every `${...}` replaced: what a runtime starts."""

    name: ServiceName
    spec: Service

    @property
    def version(self) -> str:
        return self.spec.version


def parse_sets(
    items: Mapping[str, str],
    template: Template,
    limits: Limits = DEFAULT_LIMITS,
    *,
    on: RunsOn | None = None,
) -> Overrides:
    """{"api.version": "pr-123", "api.env.DEBUG": "1"} -> {"api": {"version": "pr-123", ...}},
    each key allowed by the template and each value within the limits."""
    result: Overrides = {}
    for target, value in items.items():
        service, dot, key = target.partition(".")
        if not dot or not key:
            raise Invalid(
                f"--set {target!r}: write SERVICE.KEY=VALUE, with KEY one of {_OVERRIDE_KEYS}"
            )
        result.setdefault(service, {})[key] = value
    check_overrides(result, template, limits, on=on)
    return result


def check_overrides(
    overrides: Mapping[str, Mapping[str, str]],
    template: Template,
    limits: Limits = DEFAULT_LIMITS,
    *,
    on: RunsOn | None = None,
) -> None:
    """Every key allowed by the template, applicable on runtime `on` (when given: an override
    the runtime would drop is refused), every value within the limits."""
    flat = {f"{svc}.{key}": value for svc, keys in overrides.items() for key, value in keys.items()}
    check_values("override", flat, limits)
    for service, keys in overrides.items():
        if service not in template.services:
            known = ", ".join(sorted(template.services))
            raise Invalid(
                f"unknown service {service!r} in --set; template {template.name!r} has {known}"
            )
        for key in keys:
            if not (key == "version" or key.startswith(("env.", "values."))) or key.endswith("."):
                raise Invalid(f"--set {service}.{key}: unknown key {key!r}; use {_OVERRIDE_KEYS}")
            check_override(template, service, key)
            if on is not None:
                _check_applies(template.services[ServiceName(service)], service, key, on)


def _check_applies(service: Service, name: str, key: str, on: RunsOn) -> None:
    where = f"--set {name}.{key}"
    if key.startswith("values.") and on.section != "helm":
        raise Invalid(
            f"{where}: helm values apply to runtimes of Helm charts only, not on {on.runtime}"
        )
    if key.startswith("env.") and on.section == "helm":
        raise Invalid(
            f"{where}: a Helm release has no environment to set; use values.PATH on {on.runtime}"
        )


def changed_services(
    template: Template,
    *,
    old_params: Mapping[str, str],
    new_params: Mapping[str, str],
    old_overrides: Mapping[str, Mapping[str, str]],
    new_overrides: Mapping[str, Mapping[str, str]],
) -> list[ServiceName]:
    """Services whose resolved spec a change of parameters or overrides alters, in template
    order: those with other overrides, and those that use a parameter that changed."""
    params = {
        k for k in set(old_params) | set(new_params) if old_params.get(k) != new_params.get(k)
    }
    changed = []
    for name, service in template.services.items():
        text = json.dumps(service.model_dump(mode="json"))
        uses_param = any(f"${{params.{p}}}" in text for p in params)
        if uses_param or dict(old_overrides.get(name, {})) != dict(new_overrides.get(name, {})):
            changed.append(name)
    return changed


def resolve_params(
    template: Template, given: Mapping[str, str], limits: Limits = DEFAULT_LIMITS
) -> dict[str, str]:
    check_values("parameter", given, limits)
    unknown = sorted(set(given) - set(template.params))
    if unknown:
        known = ", ".join(sorted(template.params)) or "none"
        raise Invalid(f"unknown parameter {unknown[0]!r}; template {template.name!r} has {known}")
    return {name: given.get(name, p.default) for name, p in template.params.items()}


def choose_ttl(
    policy: TtlPolicy, requested: str | None, *, minimum: timedelta = timedelta(0)
) -> timedelta:
    """The TTL for a new space: the template's default, or what was asked within the maximum
    and at least `minimum` (the server's `--min-ttl`)."""
    if requested is None:
        return policy.default
    ttl = parse_duration(requested)
    if ttl < minimum:
        raise Invalid(
            f"TTL {requested} is too short: a space lives at least {format_duration(minimum)}"
        )
    if ttl > policy.max:
        raise Invalid(
            f"TTL {requested} is over this template's maximum of {format_duration(policy.max)}"
        )
    return ttl


def extended_expiry(
    *, expires_at: datetime, created_at: datetime, by: timedelta, policy: TtlPolicy, now: datetime
) -> datetime:
    """Add `by` to the expiry, counted from now if the space already expired, within the maximum.

    The maximum bounds the whole life of a space (created + max), so repeated extends
    cannot keep a space forever.
    """
    target = max(expires_at, now) + by
    if target > created_at + policy.max:
        room = extension_room(created_at=created_at, expires_at=expires_at, policy=policy, now=now)
        left = format_duration(room)
        raise Invalid(
            f"cannot extend by {format_duration(by)}: the template allows at most "
            f"{format_duration(policy.max)} in all, {left} more for this space"
        )
    return target


def extension_room(
    *, created_at: datetime, expires_at: datetime, policy: TtlPolicy, now: datetime
) -> timedelta:
    """How much longer the template still lets the space live (never below zero)."""
    return max(created_at + policy.max - max(expires_at, now), timedelta(0))


def _apply_overrides(service: Service, keys: Mapping[str, str]) -> Service:
    data = service.model_dump(mode="python")
    for key, value in keys.items():
        if key == "version":
            data["version"] = value
        elif key.startswith("env."):
            _set_env(data, key.removeprefix("env."), value)
        elif key.startswith("values.") and data.get("helm") is not None:
            path = key.removeprefix("values.").split(".")
            _set_path(data["helm"]["values"], path, helm_value(value))
    return Service.model_validate(data)


_INTEGER = re.compile(r"^-?(0|[1-9][0-9]*)$")


def helm_value(text: str) -> Any:
    """A `--set S.values.X=...` value typed as helm's own `--set` types it: true and false
    are booleans, whole numbers are numbers, null is null (a chart's `if .enabled` must
    see false, not the non-empty string "false"); quotes ('false', "2") keep a string."""
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    if text in ("true", "false"):
        return text == "true"
    if text == "null":
        return None
    return int(text) if _INTEGER.match(text) else text


def _set_env(data: dict[str, Any], name: str, value: str) -> None:
    """An env override reaches the service on every runtime that has an environment."""
    if data.get("process") is not None:
        data["process"]["env"][name] = value
    compose = data.get("compose")
    if compose is not None:
        value = value.replace("$", "$$")  # Compose interpolates its files: `$HOME` as written
        environment = compose.get("environment")
        if isinstance(environment, list):
            kept = [e for e in environment if str(e).partition("=")[0] != name]
            compose["environment"] = [*kept, f"{name}={value}"]
        else:
            compose["environment"] = {**(environment or {}), name: value}


def _set_path(tree: dict[str, Any], path: list[str], value: str) -> None:
    for part in path[:-1]:
        tree = tree.setdefault(part, {})
        if not isinstance(tree, dict):
            raise Invalid(f"values.{'.'.join(path)}: {part!r} is not a mapping")
    tree[path[-1]] = value


def reference_values(
    template: Template,
    *,
    space: SpaceName,
    owner: str,
    params: Mapping[str, str],
    addresses: Mapping[ServiceName, Address],
    versions: Mapping[str, str],
    domain: str = "localhost",
) -> dict[str, str]:
    values = {
        "space.name": space,
        "space.owner": owner,
        "space.domain": domain,
        "template.dir": str(template.folder),
    }
    values.update({f"params.{k}": v for k, v in params.items()})
    for name, address in addresses.items():
        values[f"services.{name}.host"] = address.host
        values[f"services.{name}.port"] = str(address.port)
        values[f"services.{name}.url"] = address.url
    values.update({f"services.{name}.version": v for name, v in versions.items()})
    return values


def resolve_services(
    template: Template,
    *,
    space: SpaceName,
    owner: str,
    params: Mapping[str, str],
    overrides: Mapping[str, Mapping[str, str]],
    addresses: Mapping[ServiceName, Address],
    domain: str = "localhost",
) -> dict[ServiceName, ResolvedService]:
    """Every service of the template, overridden and interpolated for one space
    (`domain`: the space's `${space.domain}`, as its runtime names it)."""
    versions: dict[str, str] = {
        name: overrides.get(name, {}).get("version", service.version)
        for name, service in template.services.items()
    }
    values = reference_values(
        template,
        space=space,
        owner=owner,
        params=params,
        addresses=addresses,
        versions=versions,
        domain=domain,
    )
    # Overrides last: a user's value reaches the service as written, never interpolated.
    return {
        name: ResolvedService(
            name=name,
            spec=_apply_overrides(
                _interpolated(service, values, template.folder), overrides.get(name, {})
            ),
        )
        for name, service in template.services.items()
    }


def _interpolated(service: Service, values: Mapping[str, str], folder: Path) -> Service:
    data = service.model_dump(mode="python")
    compose = data.pop("compose")
    resolved = interpolate_tree(data, values)
    # Compose reads its section next: its `$${...}` escapes must reach it as written.
    resolved["compose"] = interpolate_tree(compose, values, keep_escapes=True)
    if compose is not None and service.compose_file is None:
        resolved["compose"] = relative_to(resolved["compose"], folder)
    helm = resolved.get("helm")
    if helm is not None and str(helm["chart"]).startswith("."):
        # A chart folder next to the template, not next to wherever the server started.
        helm["chart"] = str(folder / helm["chart"])
    return Service.model_validate(resolved)


def relative_to(section: dict[str, Any], folder: Path) -> dict[str, Any]:
    """A template's compose section with its relative paths (build context, env files,
    bind mounts) made absolute from the template's folder, which is what they mean there."""

    def absolute(path: str) -> str:
        return str(folder / path) if path.startswith(".") else path

    section = dict(section)
    build = section.get("build")
    if isinstance(build, str):
        section["build"] = absolute(build)
    elif isinstance(build, dict) and isinstance(build.get("context"), str):
        section["build"] = {**build, "context": absolute(build["context"])}
    env_file = section.get("env_file")
    if isinstance(env_file, str):
        section["env_file"] = absolute(env_file)
    elif isinstance(env_file, list):
        section["env_file"] = [absolute(f) if isinstance(f, str) else f for f in env_file]
    volumes = section.get("volumes")
    if isinstance(volumes, list):
        section["volumes"] = [
            absolute(v) if isinstance(v, str) and v.startswith(".") else v for v in volumes
        ]
    return section
