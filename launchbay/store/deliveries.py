"""Webhook deliveries and pull requests in the store: recording them, and claiming the
work they owe under a lease. None of these commits: the caller's `store.write()` does.

A pull request row is a job: it is owed work while `applied < generation`. A push
delivery is a job while it is `accepted`. Claims take a lease (`lease_owner`,
`lease_until`); on PostgreSQL candidates are locked `FOR UPDATE SKIP LOCKED`, on SQLite
every write transaction is exclusive.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, and_, exists, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import InstrumentedAttribute, Session, make_transient_to_detached
from sqlalchemy.sql.schema import CallableColumnDefault, ScalarElementColumnDefault

from launchbay.domain.webhooks import DeliveryStatus, PrState
from launchbay.store.models import Delivery, PullRequest

Lease = InstrumentedAttribute[datetime | None]


def delivery(session: Session, delivery_id: str, *, for_update: bool = False) -> Delivery | None:
    return session.get(Delivery, delivery_id, with_for_update=for_update)


def pull_request(session: Session, repository: str, number: int) -> PullRequest | None:
    return session.scalar(
        select(PullRequest)
        .where(PullRequest.repository == repository.lower(), PullRequest.number == number)
        .with_for_update()
    )


def add(session: Session, row: Delivery) -> bool:
    """Record a new delivery; False if a concurrent copy of its id was recorded first.
    One INSERT that does nothing on a clash (no savepoint, no flush: this is on the path
    GitHub waits on); `row` is then the session's, and what is set on it is an UPDATE."""
    return _insert_new(session, row, key="id") is not None


def add_pull_request(session: Session, repository: str, number: int) -> PullRequest:
    """A new pull request's row (generation 0: nothing recorded yet), locked; or, if a
    concurrent delivery of the same PR recorded it first, that row, locked."""
    row = PullRequest(
        repository=repository.lower(),
        number=number,
        state=PrState.OPEN,
        head_sha="",
        updated_at=datetime.min.replace(tzinfo=UTC),
        action="",
        space="",
        generation=0,
        applied=0,
        attempts=0,
        reason="",
        reported="",
    )
    if _insert_new(session, row, key="repository", also=("number",)) is None:
        found = pull_request(session, repository, number)
        assert found is not None  # it exists: the insert clashed with it
        return found
    return row


def _insert_new(
    session: Session, row: Delivery | PullRequest, *, key: str, also: tuple[str, ...] = ()
) -> Delivery | PullRequest | None:
    """INSERT the row unless its key exists (the row is then the session's, persistent);
    None if it existed. On PostgreSQL a concurrent insert of the same key waits for the
    first transaction, then does nothing, as the unique index says."""
    table = cast(Table, type(row).__table__)
    values = {}
    for column in table.columns:
        value = getattr(row, column.key)
        if value is None and isinstance(column.default, ScalarElementColumnDefault):
            value = column.default.arg  # what the ORM's flush would have filled in
        elif value is None and isinstance(column.default, CallableColumnDefault):
            value = column.default.arg(cast(Any, None))  # e.g. default=dict: no context
        if value is not None:  # left out: NULL, or the database's own default
            values[column.name] = value
    dialect = session.get_bind().dialect.name
    if dialect not in ("postgresql", "sqlite"):
        raise NotImplementedError(f"no INSERT ... ON CONFLICT for the {dialect} dialect")
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    statement = (
        insert(table)
        .values(values)
        .on_conflict_do_nothing(index_elements=[key, *also])
        .returning(*table.primary_key.columns)
    )
    made = session.execute(statement).first()
    if made is None:
        return None
    for column, value in zip(table.primary_key.columns, made, strict=True):
        setattr(row, column.key, value)
    make_transient_to_detached(row)
    session.add(row)
    return row


def recent(session: Session, *, limit: int) -> Sequence[Delivery]:
    return session.scalars(
        select(Delivery).order_by(Delivery.received_at.desc()).limit(limit)
    ).all()


def _free(
    lease_until: InstrumentedAttribute[datetime | None], now: datetime
) -> ColumnElement[bool]:
    """No lease, or one that lapsed (its worker died)."""
    return or_(lease_until.is_(None), lease_until < now)


def _owed_pull_request(now: datetime) -> ColumnElement[bool]:
    return and_(
        PullRequest.applied < PullRequest.generation,
        or_(PullRequest.run_after.is_(None), PullRequest.run_after <= now),
        _free(PullRequest.lease_until, now),
    )


def _owed_push(now: datetime) -> ColumnElement[bool]:
    return and_(
        Delivery.status == DeliveryStatus.ACCEPTED,
        Delivery.work.is_not(None),
        _free(Delivery.lease_until, now),
    )


def owed(session: Session, *, now: datetime) -> bool:
    """Whether a claim would find work: a read, so an idle worker takes no write lock."""
    return bool(
        session.scalar(select(exists().where(_owed_pull_request(now))))
        or session.scalar(select(exists().where(_owed_push(now))))
    )


def claim_pull_request(
    session: Session, *, owner: str, now: datetime, lease: timedelta
) -> PullRequest | None:
    """The pull request owed work the longest, now leased to `owner`; None if none is."""
    pr = session.scalar(
        select(PullRequest)
        .where(_owed_pull_request(now))
        .order_by(PullRequest.run_after, PullRequest.id)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    if pr is not None:
        pr.lease_owner, pr.lease_until = owner, now + lease
    return pr


def claim_push(session: Session, *, owner: str, now: datetime, lease: timedelta) -> Delivery | None:
    """The oldest accepted push delivery, now leased to `owner`; None if none is."""
    found = session.scalar(
        select(Delivery)
        .where(_owed_push(now))
        .order_by(Delivery.received_at)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    if found is not None:
        found.lease_owner, found.lease_until = owner, now + lease
    return found


def lease(
    session: Session, pr_id: int, *, owner: str, now: datetime, ttl: timedelta
) -> PullRequest | None:
    """The pull request, now leased to `owner`, if no live lease holds it."""
    pr = session.get(PullRequest, pr_id, with_for_update=True)
    if pr is None or (pr.lease_until is not None and pr.lease_until >= now):
        return None
    pr.lease_owner, pr.lease_until = owner, now + ttl
    return pr


def to_report(session: Session, *, now: datetime) -> Sequence[PullRequest]:
    """Pull requests whose space may have news for them: converged, not leased, not
    waiting after a failed report, and not closed with their end told already."""
    return session.scalars(
        select(PullRequest)
        .where(
            PullRequest.generation > 0,
            PullRequest.applied >= PullRequest.generation,
            or_(PullRequest.report_after.is_(None), PullRequest.report_after <= now),
            _free(PullRequest.lease_until, now),
            or_(PullRequest.state == PrState.OPEN, ~PullRequest.reported.like("%:deleted")),
        )
        .order_by(PullRequest.id)
        .limit(200)
    ).all()


def release(session: Session, *, node: str) -> None:
    """A server starting again on its data folder takes back its earlier run's leases at
    once (its owners are `<node>/<boot>`), instead of waiting for them to lapse."""
    mine = f"{node}/%"
    for table in (PullRequest, Delivery):
        session.execute(
            update(table)
            .where(table.lease_owner.like(mine))
            .values(lease_owner=None, lease_until=None)
        )


def settle_deliveries(
    session: Session,
    pr: PullRequest,
    *,
    generation: int,
    status: DeliveryStatus,
    reason: str,
    now: datetime,
) -> None:
    """Every accepted delivery of `pr` up to `generation` ends with `status`."""
    for item in session.scalars(
        select(Delivery).where(
            Delivery.pull_request_id == pr.id,
            Delivery.status == DeliveryStatus.ACCEPTED,
            Delivery.generation <= generation,
        )
    ):
        item.status, item.finished_at = status, now
        item.reason = reason if item.generation == generation else f"superseded: {reason}"
