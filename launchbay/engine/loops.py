"""The level-triggered loops: the reconciler and the reaper.

Both read what is and decide with the pure planner; neither acts beside the jobs. The
reconciler observes each space that has no job queued or running and, where what runs
differs from what was asked, queues a `reconcile` job, which looks again under the space's
one-job-at-a-time rule and corrects it. After a crash at any point the next pass
converges. A read that fails (store or runtime) makes a pass do nothing, never delete.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from datetime import timedelta

from launchbay.domain.auth import SYSTEM
from launchbay.domain.errors import LaunchbayError, TemporaryError
from launchbay.domain.events import EventKind
from launchbay.domain.jobs import JobKind
from launchbay.domain.names import ServiceName, SpaceName
from launchbay.domain.phases import Phase
from launchbay.domain.plan import Action, ActionKind, Observed, plan_space
from launchbay.engine.engine import Engine, Loop, Snapshot
from launchbay.engine.jobs import Claimed, wall_clock
from launchbay.engine.requests import Requests
from launchbay.store import jobs as store_jobs
from launchbay.store import queries as q
from launchbay.store.models import Space

log = logging.getLogger(__name__)

# Finished jobs are kept this long for `bay space show`; their outcomes stay in the events.
KEEP_FINISHED_JOBS = timedelta(days=1)
# A space whose job failed is not given new work by the reconciler for this long.
FAILED_JOB_COOLING = timedelta(seconds=60)


def install(engine: Engine) -> list[Loop]:
    """Teach the engine's workers the reconcile job; the loops for `Engine.start`: the
    reconciler on every server (each looks after the spaces pinned to it, the leader also
    after the others) and the reaper on the leader only."""
    engine.jobs.handle(JobKind.RECONCILE, lambda job: reconcile_job(engine, job))
    return [
        Loop("reconciler", engine.settings.reconcile_interval, reconcile_once),
        Loop("reaper", engine.settings.sweep_interval, reap_once, leader_only=True),
    ]


def reconcile_once(engine: Engine) -> None:
    """One pass over the live spaces this server looks after, then over what its runtimes
    hold without a record.

    Every server looks after the spaces pinned to it (machine-local runtimes); the leader
    also after the others, and sweeps the runtimes every server shares.
    """
    leader = engine.leader.holds()
    swept = {
        name for name in engine.runtimes if leader or engine.board.runtimes[name].machine_local
    }
    # Runtimes first, store second: a record is always written before a runtime creates
    # anything, so whatever a runtime held before this store read is in the read.
    held = _runtime_holdings(engine, swept)
    with engine.store.read() as s:
        spaces = list(q.live_spaces(s))
        busy = store_jobs.busy_spaces(s, now=wall_clock(), cooling=FAILED_JOB_COOLING)
        ever = q.count_spaces(s)
    if leader:
        with engine.store.write() as s:
            store_jobs.prune(s, before=wall_clock() - KEEP_FINISHED_JOBS)
    for space in spaces:
        if space.node != engine.settings.node and (space.node is not None or not leader):
            continue  # another server's machine runs it
        if space.runtime not in held:
            # Its runtime is unavailable (said once, by the board) or not enabled here.
            log.debug("space %s: runtime %s unavailable, skipped", space.name, space.runtime)
            continue
        if space.id in busy:
            continue
        try:
            current = _still_live(engine, space)
            if current is not None and _plan(engine, current, busy=False):
                _queue_reconcile(engine, current)
            if space.phase is not Phase.DELETING:
                _record_warnings(engine, Snapshot.of(space))
        except LaunchbayError as e:
            log.warning("space %s: reconcile skipped: %s", space.name, e.message)
        except Exception:  # per-object boundary: one space must not stop the pass
            log.exception("space %s: reconcile failed", space.name)
    _sweep_orphans(engine, held, live={(x.runtime, x.name) for x in spaces}, store_empty=ever == 0)


def _still_live(engine: Engine, seen: Space) -> Space | None:
    """The space as it is now: a delete that finished since this pass read the store must
    not be followed by an observation that recreates what it removed."""
    with engine.store.read() as s:
        space = s.get(Space, seen.id)
    if space is None or space.live_name is None or space.phase != seen.phase:
        return None
    return space


def _queue_reconcile(engine: Engine, seen: Space) -> None:
    """Queue a reconcile job, unless the space changed since this pass read it (a delete
    that finished meanwhile must not be followed by work on what it removed)."""
    with engine.store.write() as s:
        space = q.space_for_update(s, seen.id)
        if space.live_name is not None and space.phase == seen.phase:
            engine.enqueue(s, space, JobKind.RECONCILE)


def reconcile_job(engine: Engine, job: Claimed) -> None:
    """Look at the space again, now that no other job of it runs, and correct it."""
    with engine.store.read() as s:
        space = s.get(Space, job.space_id)
        if space is None or space.live_name is None:
            return
        # Work queued behind this job (a delete, a deploy) goes first: plan nothing now.
        queued = any(
            other.id != job.id and not other.state.finished
            for other in store_jobs.of_space(s, job.space_id, finished=0)
        )
    snapshot = Snapshot.of(space)
    for action in _plan(engine, space, busy=queued):
        _apply(engine, space, snapshot, action)


def _plan(engine: Engine, space: Space, *, busy: bool) -> list[Action]:
    phase = space.phase
    observed: Mapping[str, Observed] | None = {}
    if phase not in (Phase.PENDING, Phase.PROVISIONING, Phase.DELETING):
        observed = _observe(engine, Snapshot.of(space))
    restarts = {x.name: x.restarts >= engine.settings.max_restarts for x in space.services}
    return plan_space(
        phase,
        recorded={x.name: x.status for x in space.services},
        observed=observed,
        busy=busy,
        max_restarts_reached=restarts,
    )


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
                    kind=EventKind.WARNING,
                    message=warning.message,
                    now=warning.at,
                    external_id=warning.id,
                )


def _observe(engine: Engine, snapshot: Snapshot) -> Mapping[str, Observed] | None:
    try:
        template = engine.template_of(snapshot)
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
    """Carry out one action, from inside the space's reconcile job: long work is queued as
    a job of its own (it runs next), quick corrections are made here."""
    name = space.name
    if action.kind in (ActionKind.PROVISION, ActionKind.DELETE, ActionKind.RESTART):
        log.info("space %s: %s", name, action.reason or f"finishing an interrupted {action.kind}")
        with engine.store.write() as s:
            current = q.space_for_update(s, space.id)
            if action.kind is ActionKind.PROVISION:
                engine.enqueue(s, current, JobKind.PROVISION)
            elif action.kind is ActionKind.DELETE:
                engine.enqueue(s, current, JobKind.DELETE)
            elif action.service:
                engine.enqueue(
                    s, current, JobKind.RESTART, service=action.service, reason=action.reason
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
            settle=True,
        )


def _runtime_holdings(engine: Engine, names: set[str]) -> dict[str, set[SpaceName]]:
    """What each of these runtimes holds, if it answers; one that does not is left out
    (the board says so once), and its spaces and orphans wait for it."""
    held: dict[str, set[SpaceName]] = {}
    for name, runtime in engine.runtimes.items():
        if name not in names:
            continue
        try:
            held[name] = runtime.spaces()
        except TemporaryError:
            continue  # the board said so
        except LaunchbayError as e:  # refused: no rights to list, say so on the board
            engine.board.note_unavailable(name, e.message)
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
        if (runtime, name) not in engine.orphans_seen:
            engine.metrics.orphans_found.labels(runtime).inc()
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
            engine.metrics.orphans_removed.labels(runtime).inc()
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
                Requests(engine).delete(space.name, actor=SYSTEM, reason="TTL expired")
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
            kind=EventKind.EXPIRED,
            now=engine.clock(),
            message="TTL expired; copilot mode: would delete, left running",
        )
