"""Every runtime Launchbay knows, in one place: its name, the template section its
services are written in, what it is for, and how the server makes it from its settings.

A new runtime is one module with a `KIND` (see `process.KIND`) and one line in `KINDS`;
the server, the API's schema, the template listings and the runtime contract suite all
read this registry.
"""

from __future__ import annotations

from collections.abc import Mapping

from launchbay.domain.errors import Invalid
from launchbay.runtimes import compose, process
from launchbay.runtimes.base import Runtime, RuntimeContext, RuntimeKind
from launchbay.runtimes.kubernetes import kind as kubernetes

KINDS: Mapping[str, RuntimeKind] = {
    k.name: k for k in (process.KIND, compose.KIND, kubernetes.KIND)
}
NAMES: tuple[str, ...] = tuple(KINDS)


def section_of(runtime: str) -> str:
    """The template section `runtime` runs; a runtime not registered runs its own name's."""
    kind = KINDS.get(runtime)
    return kind.section if kind else runtime


def build(context: RuntimeContext) -> dict[str, Runtime]:
    """The runtimes this server's settings enable, by name."""
    made = {name: kind.make(context) for name, kind in KINDS.items()}
    return {name: runtime for name, runtime in made.items() if runtime is not None}


def check_names(names: list[str], *, what: str) -> None:
    unknown = [n for n in names if n not in KINDS]
    if unknown:
        *rest, last = [repr(n) for n in NAMES]
        raise Invalid(f"{what}: unknown runtime {unknown[0]!r}; use {', '.join(rest)} or {last}")
