"""Pure planning: dependency order, and what to do to bring a space to its desired state."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from launchbay.domain.errors import Invalid
from launchbay.domain.phases import Phase, ServiceStatus


def find_cycle(graph: Mapping[N, Sequence[str]] | Mapping[str, Sequence[str]]) -> list[str] | None:
    """A dependency cycle as a path that ends where it starts (`a -> b -> a`), or None."""
    adjacency: Mapping[str, Sequence[str]] = graph  # type: ignore[assignment]
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for dep in adjacency.get(node, ()):
            if state.get(dep) == 1:
                return [*path[path.index(dep) :], dep]
            if dep not in state and (found := visit(dep)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(adjacency):
        if node not in state and (found := visit(node)):
            return found
    return None


N = TypeVar("N", bound=str)


def layers(graph: Mapping[N, Sequence[str]]) -> list[list[N]]:
    """Nodes in dependency layers; independent nodes share a layer. Raises on a cycle."""
    cycle = find_cycle(graph)
    if cycle:
        raise Invalid("dependency cycle: " + " -> ".join(cycle))
    done: set[str] = set()
    result: list[list[N]] = []
    remaining = dict(graph)
    while remaining:
        layer = sorted(n for n, deps in remaining.items() if all(d in done for d in deps))
        result.append(layer)
        done.update(layer)
        for n in layer:
            del remaining[n]
    return result


class ActionKind(StrEnum):
    PROVISION = "provision"  # (re)start what is missing and wait for health
    RESTART = "restart"  # a service that was ready has died
    MARK = "mark"  # only record a service's observed status
    STOP = "stop"  # something runs that should not (sleeping, failed)
    DELETE = "delete"  # finish an interrupted delete


@dataclass(frozen=True)
class Observed:
    """What the runtime reports for one service."""

    running: bool
    healthy: bool | None  # None: no health check, or not probed
    detail: str = ""
    # A one-shot job that exited 0: not running, and nothing to restart.
    completed: bool = False


@dataclass(frozen=True)
class Action:
    kind: ActionKind
    service: str | None = None
    status: ServiceStatus | None = None
    reason: str = ""


def plan_space(
    phase: Phase,
    *,
    recorded: Mapping[str, ServiceStatus],
    observed: Mapping[str, Observed] | None,
    busy: bool,
    max_restarts_reached: Mapping[str, bool],
) -> list[Action]:
    """What the reconciler should do for one space, level-triggered and idempotent.

    `observed` is None when the runtime could not be read: then nothing is done, because a
    failed read must never look like "everything is gone". `busy` means another job of this
    space is queued or running (on any server): it goes first.
    """
    if busy or observed is None:
        return []
    if phase is Phase.DELETING:
        return [Action(ActionKind.DELETE)]
    if phase in (Phase.PENDING, Phase.PROVISIONING):
        return [Action(ActionKind.PROVISION, reason="resuming an interrupted provision")]
    if phase in (Phase.SLEEPING, Phase.FAILED):
        running = [name for name in recorded if observed.get(name, _GONE).running]
        return (
            [Action(ActionKind.STOP, reason=f"{phase} but running: {', '.join(running)}")]
            if running
            else []
        )
    if phase not in (Phase.READY, Phase.DEGRADED):
        return []
    actions = []
    for name, status in recorded.items():
        seen = observed.get(name, _GONE)
        if seen.completed:
            if status is not ServiceStatus.COMPLETED:
                actions.append(Action(ActionKind.MARK, name, ServiceStatus.COMPLETED, seen.detail))
        elif not seen.running:
            if max_restarts_reached.get(name, False):
                if status is not ServiceStatus.FAILED:
                    actions.append(
                        Action(
                            ActionKind.MARK,
                            name,
                            ServiceStatus.FAILED,
                            f"exited too often, not restarted again; last: {seen.detail}",
                        )
                    )
            else:
                actions.append(
                    Action(ActionKind.RESTART, name, reason=seen.detail or "not running")
                )
        elif seen.healthy is False and status is not ServiceStatus.UNHEALTHY:
            actions.append(Action(ActionKind.MARK, name, ServiceStatus.UNHEALTHY, seen.detail))
        elif seen.healthy is not False and status is not ServiceStatus.READY:
            actions.append(Action(ActionKind.MARK, name, ServiceStatus.READY))
    return actions


def phase_for(statuses: Sequence[ServiceStatus]) -> Phase:
    """A settled space's phase from its services' statuses."""
    return Phase.READY if all(s.is_up for s in statuses) else Phase.DEGRADED


_GONE = Observed(running=False, healthy=None, detail="not running")
