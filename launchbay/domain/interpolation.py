"""`${...}` references in templates: what they may name, and how they are replaced.

A template never hard-codes an address. `${services.db.url}` becomes
`http://127.0.0.1:40123` on the process runtime, the Compose service name on compose and
the in-cluster DNS name on kubernetes; the runtime supplies the addresses, this module
only substitutes them. `$${` writes a literal `${`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from launchbay.domain.errors import Invalid

REFERENCE = re.compile(r"\$(\$?)\{([^}]*)\}")
SERVICE_ATTRIBUTES = ("host", "port", "url", "version")
SPACE_ATTRIBUTES = ("name", "owner", "domain")
TEMPLATE_ATTRIBUTES = ("dir",)


def references(text: str) -> Iterator[str]:
    """Every `${...}` reference in `text`, without escaped `$${...}`."""
    for match in REFERENCE.finditer(text):
        if not match.group(1):
            yield match.group(2).strip()


def check_reference(ref: str, *, params: set[str], services: set[str]) -> str | None:
    """Why `ref` can never resolve in a template with these params and services, or None."""
    parts = ref.split(".")
    head = parts[0]
    if head == "space" and len(parts) == 2 and parts[1] in SPACE_ATTRIBUTES:
        return None
    if head == "template" and len(parts) == 2 and parts[1] in TEMPLATE_ATTRIBUTES:
        return None
    if head == "params" and len(parts) == 2:
        return None if parts[1] in params else f"unknown parameter {parts[1]!r} in ${{{ref}}}"
    if head == "services" and len(parts) == 3:
        if parts[1] not in services:
            return f"unknown service {parts[1]!r} in ${{{ref}}}"
        if parts[2] not in SERVICE_ATTRIBUTES:
            allowed = ", ".join(SERVICE_ATTRIBUTES)
            return f"unknown attribute {parts[2]!r} in ${{{ref}}} (use one of {allowed})"
        return None
    return (
        f"unknown reference ${{{ref}}}: use ${{space.name}}, ${{space.owner}}, ${{space.domain}}, "
        "${template.dir}, ${params.NAME} or ${services.NAME.host|port|url|version}"
    )


def interpolate(text: str, values: Mapping[str, str], *, keep_escapes: bool = False) -> str:
    """Replace each reference with its value; a reference without a value is an error.
    With `keep_escapes`, `$${...}` stays as written: a Compose section, where `$$` is
    Compose's own escape and Compose reads the text next."""

    def substitute(match: re.Match[str]) -> str:
        if match.group(1):
            return ("$${" if keep_escapes else "${") + match.group(2) + "}"
        ref = match.group(2).strip()
        if ref not in values:
            raise Invalid(f"nothing to put in ${{{ref}}}")
        return values[ref]

    return REFERENCE.sub(substitute, text)


def interpolate_tree(value: Any, values: Mapping[str, str], *, keep_escapes: bool = False) -> Any:
    """`interpolate` applied to every string in nested lists and mappings (keys included)."""
    if isinstance(value, str):
        return interpolate(value, values, keep_escapes=keep_escapes)
    if isinstance(value, list):
        return [interpolate_tree(item, values, keep_escapes=keep_escapes) for item in value]
    if isinstance(value, dict):
        return {
            interpolate_tree(key, values, keep_escapes=keep_escapes): interpolate_tree(
                item, values, keep_escapes=keep_escapes
            )
            for key, item in value.items()
        }
    return value


def strings_with_paths(
    value: Any, path: tuple[str | int, ...] = ()
) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """Every string in a nested structure, with the path that leads to it."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from strings_with_paths(item, (*path, index))
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from strings_with_paths(item, (*path, str(key)))
