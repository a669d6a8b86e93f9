"""Leader election on a real PostgreSQL (advisory lock) and on SQLite (a file lock)."""

from __future__ import annotations

from launchbay.store.db import Store
from launchbay.store.leader import LeaderLock


def test_exactly_one_holder_at_a_time_and_the_next_takes_over(store):
    other = Store(store.url)
    first, second = LeaderLock(store), LeaderLock(other)
    try:
        assert first.holds()
        assert first.holds()  # still held on the next tick
        assert not second.holds()
        first.release()
        assert second.holds()
        assert not first.holds()
    finally:
        first.release()
        second.release()
        other.close()


def test_a_leader_whose_session_ends_is_replaced_and_knows_it(postgres):
    import psycopg

    url = postgres.new_database()
    a, b = Store(url), Store(url)
    first, second = LeaderLock(a), LeaderLock(b)
    try:
        assert first.holds()
        with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory'"
            )
        assert second.holds()
        assert not first.holds()  # its session is gone: it stops leading
    finally:
        first.release()
        second.release()
        a.close()
        b.close()
