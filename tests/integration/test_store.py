"""The store on SQLite and on a real PostgreSQL started by the test set-up."""

import threading
from datetime import UTC, datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from launchbay.domain.errors import Conflict
from launchbay.domain.phases import Phase
from launchbay.store import queries as q
from launchbay.store.db import Store
from launchbay.store.models import Base, Space

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def new_space(name: str, **extra) -> Space:
    values = dict(
        name=name,
        live_name=name,
        template="demo",
        runtime="process",
        owner="ann",
        params={},
        overrides={},
        phase=Phase.PENDING.value,
        reason="",
        created_at=NOW,
        updated_at=NOW,
        expires_at=NOW + timedelta(hours=1),
    )
    values.update(extra)
    return Space(**values)


def test_migrations_create_exactly_the_schema_of_the_models(store):
    with store.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert diff == []


def test_migrating_twice_changes_nothing(store):
    store.migrate()
    with store.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
        assert diff == []
        assert MigrationContext.configure(connection).get_current_heads()


def test_times_come_back_timezone_aware_in_utc(store):
    with store.write() as s:
        q.add_space(s, new_space("a"))
    with store.read() as s:
        space = q.find_space(s, "a")
    assert space.created_at == NOW and space.created_at.tzinfo is not None


def test_naive_datetimes_are_refused(store):
    with pytest.raises(Exception, match="naive datetime"), store.write() as s:
        q.add_space(s, new_space("a", created_at=datetime(2026, 1, 1)))


def test_a_live_name_is_unique_but_reusable_once_deleted(store):
    with store.write() as s:
        first = q.add_space(s, new_space("a"))
    with pytest.raises(Conflict), store.write() as s:
        q.add_space(s, new_space("a"))
    with store.write() as s:
        old = q.space_for_update(s, first.id)
        old.live_name, old.phase = None, Phase.DELETED.value
    with store.write() as s:
        q.add_space(s, new_space("a"))
    with store.read() as s:
        assert q.find_space(s, "a").live_name == "a"
        assert (
            len(q.list_spaces(s, q.SpaceFilter(include_deleted=True), limit=10, before_id=None)[0])
            == 2
        )


def test_concurrent_creates_of_one_name_let_exactly_one_win(store):
    results: list[str] = []
    barrier = threading.Barrier(8)

    def create() -> None:
        barrier.wait()
        try:
            with store.write() as s:
                q.add_space(s, new_space("same"))
            results.append("won")
        except Conflict:
            results.append("conflict")

    threads = [threading.Thread(target=create) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["conflict"] * 7 + ["won"]


def test_concurrent_read_then_write_transactions_never_fail_as_busy(store):
    """Eight writers each read a counter and write it back, 25 times: BEGIN IMMEDIATE on SQLite
    queues them on the busy timeout, row locks do on PostgreSQL; none fails, none is lost."""
    with store.write() as s:
        space_id = q.add_space(s, new_space("counter", reason="0")).id
    errors: list[Exception] = []

    def bump() -> None:
        try:
            for _ in range(25):
                with store.write() as s:
                    space = q.space_for_update(s, space_id)
                    space.reason = str(int(space.reason) + 1)
        except Exception as e:
            errors.append(e)

    threads = [threading.Thread(target=bump) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with store.read() as s:
        assert q.space_for_update(s, space_id).reason == "200"


def test_listing_pages_newest_first_with_filters(store):
    with store.write() as s:
        for i in range(7):
            q.add_space(s, new_space(f"s{i}", owner="ann" if i % 2 else "bob"))
    with store.read() as s:
        page, total = q.list_spaces(s, q.SpaceFilter(), limit=3, before_id=None)
        assert total == 7 and [x.name for x in page] == ["s6", "s5", "s4"]
        page2, _ = q.list_spaces(s, q.SpaceFilter(), limit=3, before_id=page[-1].id)
        assert [x.name for x in page2] == ["s3", "s2", "s1"]
        mine, total = q.list_spaces(s, q.SpaceFilter(owner="ann"), limit=10, before_id=None)
        assert total == 3 and {x.owner for x in mine} == {"ann"}
        found, _ = q.list_spaces(s, q.SpaceFilter(search="5"), limit=10, before_id=None)
        assert [x.name for x in found] == ["s5"]


def test_expired_spaces_are_found_by_expiry(store):
    with store.write() as s:
        q.add_space(s, new_space("old", expires_at=NOW - timedelta(seconds=1)))
        q.add_space(s, new_space("new", expires_at=NOW + timedelta(hours=1)))
        q.add_space(
            s, new_space("going", expires_at=NOW - timedelta(hours=1), phase=Phase.DELETING.value)
        )
    with store.read() as s:
        assert [x.name for x in q.expired_spaces(s, now=NOW)] == ["old"]


def test_events_record_who_did_what(store):
    with store.write() as s:
        space = q.add_space(s, new_space("a"))
        q.add_event(
            s, space, actor="ann", kind="created", message="hello", now=NOW, phase=Phase.PENDING
        )
        q.add_event(
            s, space, actor="launchbay", kind="ready", message="up", now=NOW, phase=Phase.READY
        )
    with store.read() as s:
        events = q.events(s, q.find_space(s, "a"), limit=10)
    assert [(e.actor, e.kind, e.phase) for e in events] == [
        ("launchbay", "ready", "ready"),
        ("ann", "created", "pending"),
    ]


def test_users_and_tokens_are_found_by_digest_only(store):
    with store.write() as s:
        user = q.add_user(s, name="ann", is_admin=False, now=NOW)
        q.add_token(
            s, user=user, digest="d" * 64, now=NOW, name="k", scopes=["read"], expires_at=None
        )
    with store.read() as s:
        assert q.user_by_token(s, "d" * 64).name == "ann"
        assert q.user_by_token(s, "e" * 64) is None
    with pytest.raises(Conflict), store.write() as s:
        q.add_user(s, name="ann", is_admin=True, now=NOW)


@pytest.mark.postgres
def test_replicas_migrating_a_fresh_database_at_once_all_come_up(postgres):
    """The chart starts its replicas together: each migrates at start, and every one must
    come up (two once crashed with UniqueViolation on alembic_version)."""
    url = postgres.new_database()
    stores = [Store(url) for _ in range(6)]
    barrier = threading.Barrier(len(stores))
    errors: list[Exception] = []

    def migrate(store: Store) -> None:
        barrier.wait()
        try:
            store.migrate()
        except Exception as e:
            errors.append(e)

    threads = [threading.Thread(target=migrate, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in stores:
        s.close()
    assert errors == []
