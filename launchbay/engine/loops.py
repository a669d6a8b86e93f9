"""The level-triggered loops: the reconciler and the reaper.

Both read what is, decide with the pure planner, and act through the engine's job queue,
so that after a crash at any point the next pass converges. A read that fails (store or
runtime) makes a pass do nothing, never delete.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

from launchbay.domain.auth import SYSTEM
from launchbay.domain.errors import LaunchbayError, TemporaryError
from launchbay.domain.names import ServiceName, SpaceName
from launchbay.domain.phases import Phase, ServiceStatus
from launchbay.domain.plan import Action, ActionKind, Observed, plan_space
from launchbay.engine.engine import Engine, Snapshot
from launchbay.store import queries as q
from launchbay.store.models import Space

log = logging.getLogger(__name__)


def reconcile_once(engine: Engine) -> None:
    """One pass over every live space, then over what the runtimes hold without a record."""
    # Runtimes first, store second: a record is always written before a runtime creates
    # anything, so whatever a runtime held before this store read is in the read.
    held = _runtime_holdings(engine)
    with engine.store.read() as s:
        spaces = list(q.live_spaces(s))
        ever = q.count_spaces(s)
    for space in spaces:
        if space.runtime not in held:
            # Its runtime is unavailable (said once, by the board) or not enabled here.
            log.debug("space %s: runtime %s unavailable, skipped", space.name, space.runtime)
            continue
        try:
            with engine.jobs.idle(space.id) as idle:
                current = _still_live(engine, space) if idle else None
                if current is not None:
                    _reconcile_space(engine, current)
        except LaunchbayError as e:
            log.warning("space %s: reconcile skipped: %s", space.name, e.message)
        except Exception:  # per-object boundary: one space must not stop the pass
            log.exception("space %s: reconcile failed", space.name)
    _sweep_orphans(engine, held, live={(x.runtime, x.name) for x in spaces}, store_empty=ever == 0)


def _still_live(engine: Engine, seen: Space) -> Space | None:
    """The space as it is now, read under its lock: a delete that finished since this pass
    read the store must not be followed by a reconcile that recreates what it removed."""
    with engine.store.read() as s:
        space = s.get(Space, seen.id)
    if space is None or space.live_name is None or space.phase != seen.phase:
        return None
    return space


def _reconcile_space(engine: Engine, space: Space) -> None:
    snapshot = Snapshot.of(space)
    phase = Phase(space.phase)
    observed: Mapping[str, Observed] | None = {}
    if phase not in (Phase.PENDING, Phase.PROVISIONING, Phase.DELETING):
        observed = _observe(engine, snapshot)
    restarts = {x.name: x.restarts >= engine.settings.max_restarts for x in space.services}
    actions = plan_space(
        phase,
        recorded={x.name: ServiceStatus(x.status) for x in space.services},
        observed=observed,
        busy=engine.jobs.busy(space.id),
        max_restarts_reached=restarts,
    )
    for action in actions:
        _apply(engine, space, snapshot, action)
    if phase is not Phase.DELETING:
        _record_warnings(engine, snapshot)


def _record_warnings(engine: Engine, snapshot: Snapshot) -> None:
    """The runtime's warnings (a cluster's Warning events) into the timeline, each once."""
    try:
        warnings = engine.runtime(snapshot.runtime).warnings(snapshot.ref)
    except LaunchbayError as e:
        log.debug("space %s: no warnings this pass: %s", snapshot.ref.name, e.message)
        return
    if not warnings:
        return
    with engine.store.write() as s:
        space = q.space_for_update(s, snapshot.id)
        known = q.external_event_ids(s, space, [w.id for w in warnings])
        for warning in warnings:
            if warning.id not in known:
                q.add_event(
                    s,
                    space,
                    actor=snapshot.runtime,
                    kind="warning",
                    message=warning.message,
                    now=warning.at,
                    external_id=warning.id,
                )


def _observe(engine: Engine, snapshot: Snapshot) -> Mapping[str, Observed] | None:
    try:
        template = engine.catalog.get(snapshot.ref.template)
        runtime = engine.runtime(snapshot.runtime)
        services = engine.resolve(snapshot, template, runtime)
        observed = runtime.observe(snapshot.ref, list(services.values()))
        return {str(name): seen for name, seen in observed.items()}
    except LaunchbayError as e:
        log.warning(
            "space %s: cannot observe, doing nothing this pass: %s", snapshot.ref.name, e.message
        )
        return None


def _apply(engine: Engine, space: Space, snapshot: Snapshot, action: Action) -> None:
    name = space.name
    if action.kind is ActionKind.PROVISION:
        log.info("space %s: %s", name, action.reason)
        engine.submit_provision(space)
    elif action.kind is ActionKind.DELETE:
        log.info("space %s: finishing an interrupted delete", name)
        engine.submit_delete(space)
    elif action.kind is ActionKind.RESTART and action.service:
        service = action.service
        engine.jobs.submit(
            space.id,
            f"restart:{service}",
            lambda: engine.restart_job(space.id, service, reason=action.reason),
            label=name,
        )
    elif action.kind is ActionKind.STOP:
        log.info("space %s: stopping services: %s", name, action.reason)
        engine.runtime(snapshot.runtime).sleep(
            snapshot.ref, [ServiceName(x.name) for x in space.services]
        )
    elif action.kind is ActionKind.MARK and action.service and action.status:
        engine.set_service(
            snapshot,
            ServiceName(action.service),
            action.status,
            action.reason or action.status.value,
        )
        engine.settle_phase(space.id)


def _runtime_holdings(engine: Engine) -> dict[str, set[SpaceName]]:
    """What each runtime that answers holds; a runtime that does not answer is left out
    (the board says so once), and its spaces and orphans wait for it."""
    held: dict[str, set[SpaceName]] = {}
    for name, runtime in engine.runtimes.items():
        try:
            held[name] = runtime.spaces()
        except TemporaryError:
            continue
    return held


def _sweep_orphans(
    engine: Engine,
    held: dict[str, set[SpaceName]],
    *,
    live: set[tuple[str, str]],
    store_empty: bool,
) -> None:
    """Remove what runtimes hold for spaces with no live record, once past the grace period.

    Only in runtimes whose read succeeded this pass, and never when the store has no space
    at all: an empty store (a wrong database URL, a lost volume) must not look like
    "everything is orphaned".
    """
    if store_empty:
        return
    now = time.monotonic()
    current = {(runtime, name) for runtime, names in held.items() for name in names} - live
    for key in list(engine.orphans_seen):
        if key not in current:
            del engine.orphans_seen[key]
    for runtime, name in sorted(current):
        first = engine.orphans_seen.setdefault((runtime, name), now)
        if now - first < engine.settings.orphan_grace:
            log.info(
                "space %s: %s holds resources with no live record; removing after the grace period",
                name,
                runtime,
            )
            continue
        log.warning("space %s: removing orphaned %s resources (no live record)", name, runtime)
        try:
            engine.runtimes[runtime].destroy_orphan(name)
            del engine.orphans_seen[(runtime, name)]
        except LaunchbayError as e:
            log.warning("space %s: orphan removal failed: %s", name, e.message)


def reap_once(engine: Engine) -> None:
    """Delete (autopilot) or mark (copilot) every space past its expiry."""
    now = engine.clock()
    with engine.store.read() as s:
        expired = list(q.expired_spaces(s, now=now))
    for space in expired:
        try:
            if engine.settings.copilot:
                _mark_expired(engine, space.id)
            else:
                log.info(
                    "space %s: TTL expired at %s, deleting",
                    space.name,
                    space.expires_at.isoformat(),
                )
                engine.delete(space.name, actor=SYSTEM, reason="TTL expired")
        except LaunchbayError as e:
            log.warning("space %s: reaper could not act: %s", space.name, e.message)


def _mark_expired(engine: Engine, space_id: int) -> None:
    with engine.store.write() as s:
        space = q.space_for_update(s, space_id)
        if space.expired_at is not None or space.live_name is None:
            return
        space.expired_at = engine.clock()
        log.info("space %s: **COPILOT**: would delete (TTL expired)", space.name)
        q.add_event(
            s,
            space,
            actor=SYSTEM.name,
            kind="expired",
            now=engine.clock(),
            message="TTL expired; copilot mode: would delete, left running",
        )
