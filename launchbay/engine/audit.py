"""The audit trail: one record for each change asked of the server, kept for a set time.
The API's recorder writes those of requests; the GitHub worker those of pull requests."""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields
from datetime import datetime, timedelta

from sqlalchemy import delete, select

from launchbay.domain.auth import Actor
from launchbay.domain.errors import Invalid
from launchbay.engine.engine import Clock
from launchbay.store.db import Store
from launchbay.store.models import AuditRecord

log = logging.getLogger(__name__)

DEFAULT_KEEP = timedelta(days=180)
MAX_PAGE = 500
# What is recorded of each field, at most (a path's name is bounded, a header is not).
_WIDTH = {"actor": 63, "credential": 160, "via": 16, "action": 63, "target": 255, "address": 64}


@dataclass(frozen=True)
class Entry:
    at: datetime
    actor: str
    credential: str  # "key ci", "portal session", "pull request acme/shop#12"
    via: str
    action: str  # "space.delete", "key.create", "signin"
    target: str
    address: str
    outcome: str  # ok, refused, invalid, not found, conflict, unavailable, failed
    status: int
    id: int = 0


@dataclass(frozen=True)
class Filters:
    actor: str | None = None
    action: str | None = None
    target: str | None = None
    outcome: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def credential_of(actor: Actor, *, via: str) -> str:
    if actor.key is not None:
        return f"key {actor.key.name}"
    return "portal session" if via == "portal" else via


class Audit:
    def __init__(self, store: Store, *, clock: Clock, keep: timedelta = DEFAULT_KEEP) -> None:
        self.store = store
        self.clock = clock
        self.keep = keep

    def record(self, entry: Entry) -> None:
        """Write one record. A store that fails is logged with the record, not raised: the
        change it records has happened and has been answered."""
        fields = {name: str(getattr(entry, name))[:width] for name, width in _WIDTH.items()}
        try:
            with self.store.write() as s:
                s.add(
                    AuditRecord(at=entry.at, outcome=entry.outcome, status=entry.status, **fields)
                )
        except Exception:  # the trail's boundary: the record goes to the log instead
            log.exception("audit record not stored: %s", entry)

    def pull_request(
        self, origin: str, *, space: str, opened: bool, ok: bool, now: datetime
    ) -> None:
        """What the GitHub worker did for a pull request (`origin`: github:OWNER/REPO#N)."""
        self.record(
            Entry(
                at=now,
                actor="github",
                credential=f"pull request {origin.removeprefix('github:')}",
                via="webhook",
                action="space.apply" if opened else "space.delete",
                target=space,
                address="",
                outcome="ok" if ok else "failed",
                status=200 if ok else 500,
            )
        )

    def page(
        self, filters: Filters, *, viewer: Actor, cursor: int | None = None, limit: int = 100
    ) -> tuple[list[Entry], int | None]:
        """Newest first, `limit` at most, after `cursor`; and the cursor of the next page.
        An admin reads every record; anyone else their own."""
        if not 1 <= limit <= MAX_PAGE:
            raise Invalid(f"limit must be between 1 and {MAX_PAGE}")
        query = select(AuditRecord).order_by(AuditRecord.id.desc()).limit(limit + 1)
        actor = filters.actor if viewer.is_admin else viewer.name
        if filters.actor is not None and actor != filters.actor:
            return [], None  # someone else's records: none that this viewer may read
        for column, value in (
            (AuditRecord.actor, actor),
            (AuditRecord.action, filters.action),
            (AuditRecord.target, filters.target),
            (AuditRecord.outcome, filters.outcome),
        ):
            if value is not None:
                query = query.where(column == value)
        if filters.since is not None:
            query = query.where(AuditRecord.at >= filters.since)
        if filters.until is not None:
            query = query.where(AuditRecord.at < filters.until)
        if cursor is not None:
            query = query.where(AuditRecord.id < cursor)
        with self.store.read() as s:
            rows = list(s.scalars(query))
        entries = [_entry(row) for row in rows[:limit]]
        return entries, (entries[-1].id if len(rows) > limit else None)

    def prune(self) -> int:
        """Forget the records older than the trail keeps; how many went."""
        before = self.clock() - self.keep
        with self.store.write() as s:
            result = s.execute(delete(AuditRecord).where(AuditRecord.at < before))
            gone = int(getattr(result, "rowcount", 0) or 0)
        if gone:
            log.info("audit: %d records older than %s forgotten", gone, before.date())
        return gone


def _entry(row: AuditRecord) -> Entry:
    return Entry(**{f.name: getattr(row, f.name) for f in fields(Entry)})
