"""The job queue in the store. None of these commits: the caller's `store.write()` does.

Claiming is safe across replicas: on PostgreSQL a claim locks candidate jobs with
`FOR UPDATE SKIP LOCKED` and then the space's row, so two workers never claim jobs of one
space at once; on SQLite every write transaction is exclusive (BEGIN IMMEDIATE).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, exists, func, or_, select, update
from sqlalchemy.orm import Session, aliased

from launchbay.domain.jobs import JobKind, JobState
from launchbay.store.models import Job, Space

UNFINISHED = (JobState.QUEUED, JobState.RUNNING)


def enqueue(
    session: Session,
    space: Space,
    kind: JobKind,
    *,
    now: datetime,
    args: dict[str, Any] | None = None,
) -> Job:
    """Queue a job for the space, unless the same job is queued already (a double-clicked
    button, or a reconcile pass that finds the same work again, adds nothing)."""
    args = args or {}
    for job in session.scalars(
        select(Job).where(Job.space_id == space.id, Job.kind == kind, Job.state == JobState.QUEUED)
    ):
        if job.args == args:
            return job
    job = Job(
        space_id=space.id,
        kind=kind,
        args=args,
        state=JobState.QUEUED,
        node=space.node,
        attempts=0,
        run_after=now,
        reason="",
        created_at=now,
    )
    session.add(job)
    session.flush()
    return job


def claim(
    session: Session, *, node: str, owner: str, clock: Callable[[], datetime], lease: timedelta
) -> Job | None:
    """The oldest job this node may run, now running under `owner`'s lease; None if there
    is none. A job of a space with a job running (under a live lease) waits; a running job
    whose lease lapsed (its worker died) is taken over. Its start is read from `clock` once
    the space is held, so it is never earlier than the end of the job before it."""
    now = clock()
    candidates = (
        select(Job)
        .where(_claimable(node=node, now=now))
        .order_by(Job.id)
        .limit(32)
        .with_for_update(skip_locked=True)
    )
    passed: set[int] = set()
    for job in session.scalars(candidates):
        if job.space_id in passed:
            continue  # jobs of a space run in the order they were queued
        passed.add(job.space_id)
        # The space's row is the mutex of its jobs: whoever holds it sees every claim
        # committed before it, and a worker that finds it held looks elsewhere.
        locked = session.scalar(
            select(Space.id).where(Space.id == job.space_id).with_for_update(skip_locked=True)
        )
        if locked is None:
            continue
        running = session.scalar(
            select(Job.id)
            .where(
                Job.space_id == job.space_id,
                Job.state == JobState.RUNNING,
                Job.lease_until > now,
                Job.id != job.id,
            )
            .limit(1)
        )
        if running is not None:
            continue
        started = clock()
        job.state, job.owner, job.lease_until = JobState.RUNNING, owner, started + lease
        job.started_at = started
        job.attempts += 1
        return job
    return None


def claimable(session: Session, *, node: str, now: datetime) -> bool:
    """Whether `claim` would find anything: a read, so an idle worker takes no write lock."""
    return session.scalar(select(Job.id).where(_claimable(node=node, now=now)).limit(1)) is not None


# Another job of the same space. Made once: making an alias costs a millisecond, and the
# dispatcher asks `claimable` at every wake.
_OTHER = aliased(Job, name="other_job")


def _claimable(*, node: str, now: datetime) -> ColumnElement[bool]:
    """Jobs this node may start now: queued and due, or running under a lapsed lease, of a
    space with no other job running under a live lease (so that a busy space's backlog
    never hides the jobs of idle spaces from a claim)."""
    other = _OTHER
    space_busy = exists().where(
        other.space_id == Job.space_id,
        other.id != Job.id,
        other.state == JobState.RUNNING,
        other.lease_until > now,
    )
    return and_(
        or_(
            and_(Job.state == JobState.QUEUED, Job.run_after <= now),
            and_(Job.state == JobState.RUNNING, Job.lease_until <= now),
        ),
        or_(Job.node.is_(None), Job.node == node),
        ~space_busy,
    )


def renew(
    session: Session, *, owner: str, job_ids: Sequence[int], now: datetime, lease: timedelta
) -> set[int]:
    """Extend the leases of the owner's running jobs; the ids it still holds (a job whose
    lease lapsed may have been taken over by another worker)."""
    if not job_ids:
        return set()
    session.execute(
        update(Job)
        .where(Job.id.in_(job_ids), Job.owner == owner, Job.state == JobState.RUNNING)
        .values(lease_until=now + lease)
    )
    return set(
        session.scalars(
            select(Job.id).where(
                Job.id.in_(job_ids), Job.owner == owner, Job.state == JobState.RUNNING
            )
        )
    )


def finish(
    session: Session,
    job_id: int,
    *,
    owner: str,
    state: JobState,
    reason: str,
    now: datetime,
    forget: bool = False,
) -> None:
    """End the job, if `owner` still holds it; `forget` removes it (routine work whose
    outcome nobody needs to read)."""
    job = _held(session, job_id, owner)
    if job is None:
        return
    if forget:
        session.delete(job)
        return
    job.state, job.reason, job.finished_at = state, reason, now
    job.owner, job.lease_until = None, None


def retry(session: Session, job_id: int, *, owner: str, after: datetime, reason: str) -> Job | None:
    """Queue the job again to run no sooner than `after`, if `owner` still holds it."""
    job = _held(session, job_id, owner)
    if job is not None:
        job.state, job.reason, job.run_after = JobState.QUEUED, reason, after
        job.owner, job.lease_until = None, None
    return job


def release(session: Session, *, owners: Sequence[str], now: datetime) -> int:
    """Put back the running jobs of workers that stopped (a server shutting down, or one
    that restarted after a crash): they run again at once, the interrupted try uncounted."""
    if not owners:
        return 0
    result = session.execute(
        update(Job)
        .where(Job.owner.in_(owners), Job.state == JobState.RUNNING)
        .values(
            state=JobState.QUEUED,
            owner=None,
            lease_until=None,
            run_after=now,
            attempts=Job.attempts - 1,
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


def stale_owners(session: Session, *, node: str, current: str) -> list[str]:
    """Owners of running jobs on this node other than `current`: earlier boots of this
    server, which cannot be alive while it is (one server per data folder)."""
    rows = session.scalars(
        select(Job.owner)
        .where(Job.state == JobState.RUNNING, Job.owner.like(f"{node}/%"))
        .distinct()
    )
    return [owner for owner in rows if owner and owner != current]


def busy_spaces(session: Session, *, now: datetime, cooling: timedelta = timedelta(0)) -> set[int]:
    """Spaces with a job queued, or running under a live lease, or (with `cooling`) one
    that failed less than `cooling` ago: the reconciler leaves those alone this pass, so
    that work refused for good is not queued again at every pass."""
    rows = session.scalars(
        select(Job.space_id)
        .where(
            or_(
                Job.state == JobState.QUEUED,
                and_(Job.state == JobState.RUNNING, Job.lease_until > now),
                and_(Job.state == JobState.FAILED, Job.finished_at > now - cooling),
            )
        )
        .distinct()
    )
    return set(rows)


def of_space(session: Session, space_id: int, *, finished: int = 5) -> list[Job]:
    """The space's unfinished jobs, then its `finished` most recent finished ones."""
    unfinished = session.scalars(
        select(Job).where(Job.space_id == space_id, Job.state.in_(UNFINISHED)).order_by(Job.id)
    ).all()
    done = session.scalars(
        select(Job)
        .where(Job.space_id == space_id, Job.state.not_in(UNFINISHED))
        .order_by(Job.id.desc())
        .limit(finished)
    ).all()
    return [*unfinished, *done]


def by_id(session: Session, job_id: int) -> Job | None:
    return session.get(Job, job_id)


def counts(session: Session) -> dict[tuple[str, str], int]:
    """Jobs by (kind, state)."""
    rows = session.execute(select(Job.kind, Job.state, func.count()).group_by(Job.kind, Job.state))
    return {(str(kind), str(state)): n for kind, state, n in rows}


def prune(session: Session, *, before: datetime) -> int:
    """Forget jobs that finished before `before` (their outcome is in the space's events)."""
    result = session.execute(
        delete(Job).where(Job.state.not_in(UNFINISHED), Job.finished_at < before)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def _held(session: Session, job_id: int, owner: str) -> Job | None:
    # FOR UPDATE on PostgreSQL; SQLite renders none (its write transactions are exclusive).
    job = session.scalar(select(Job).where(Job.id == job_id).with_for_update())
    if job is None or job.owner != owner or job.state is not JobState.RUNNING:
        return None
    return job
