"""No error escapes its boundary and nothing blocks: each test is a defect a review found,
shown on the server's real app (served in-process, so that the test can reach its store)
with the fault injected at the database driver's boundary."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import event
from sqlalchemy.exc import InterfaceError

from launchbay.server import ServerSettings
from launchbay.store.db import Store
from launchbay.store.leader import LeaderLock
from tests.integration import templates as extra
from tests.support import inprocess_server, wait_until


@pytest.fixture
def templates(templates: Path) -> Path:
    extra.install(templates, "QUICK")
    return templates


def restarts(url: str, thread: str) -> float:
    prefix = f'launchbay_thread_restarts_total{{thread="{thread}"}} '
    for line in httpx.get(f"{url}/metrics").text.splitlines():
        if line.startswith(prefix):
            return float(line.removeprefix(prefix))
    return 0.0


@contextlib.contextmanager
def failing_for(store: Store, thread: str) -> Iterator[threading.Event]:
    """While the yielded event is set, every statement the named thread sends to the
    database fails as a broken connection does (an error the code did not expect)."""
    broken = threading.Event()

    def fail(*_: object) -> None:
        if broken.is_set() and threading.current_thread().name == thread:
            raise InterfaceError("SELECT", {}, sqlite3.InterfaceError("connection broken"))

    event.listen(store.engine, "before_cursor_execute", fail)
    try:
        yield broken
    finally:
        broken.clear()
        event.remove(store.engine, "before_cursor_execute", fail)


def test_a_dispatcher_that_hits_a_database_error_is_restarted_counted_and_not_ready_meanwhile(
    tmp_path, templates
):
    # The dispatcher once died on the first error it did not expect, silently: no job
    # ran on that server again, and /readyz still said ready.
    settings = ServerSettings(data_dir=tmp_path / "data", templates=templates)
    with inprocess_server(settings) as (url, app):
        store = app.state.bay.engine.store
        with failing_for(store, "launchbay-dispatcher") as broken:
            broken.set()
            wait_until(
                lambda: httpx.get(f"{url}/readyz").status_code == 503,
                timeout=20,
                what="/readyz to say the dispatcher is down",
            )
            assert "dispatcher" in httpx.get(f"{url}/readyz").json()["detail"]
            wait_until(lambda: restarts(url, "dispatcher") >= 1, timeout=20, what="a restart")
            broken.clear()
            wait_until(
                lambda: httpx.get(f"{url}/readyz").status_code == 200,
                timeout=30,
                what="/readyz to be ready again",
            )
        token = (settings.data_dir / "admin-token").read_text().strip()
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as api:
            created = api.post("/api/v1/spaces", json={"name": "after", "template": "quick"})
            assert created.status_code in (200, 201, 202), created.text
            wait_until(
                lambda: api.get("/api/v1/spaces/after").json()["phase"] == "ready",
                timeout=60,
                what="the space to be provisioned by the restarted dispatcher",
            )
            api.delete("/api/v1/spaces/after")
            wait_until(
                lambda: api.get("/api/v1/spaces/after").json()["phase"] == "deleted",
                timeout=60,
                what="the space to be deleted",
            )


def test_a_404_page_is_served_while_every_pooled_connection_is_held(tmp_path, templates, postgres):
    # The portal's error page was rendered by an async handler that read the database on
    # the event loop: with the pool exhausted, any 404 froze the whole server for the
    # pool's 30 s timeout.
    settings = ServerSettings(
        data_dir=tmp_path / "data", templates=templates, db=postgres.new_database()
    )
    with inprocess_server(settings) as (url, app), httpx.Client(base_url=url, timeout=5) as web:
        accounts = app.state.accounts
        link = accounts.signin_link(accounts.by_name("admin"))
        assert web.get(f"/signin/link/{link}").status_code in (200, 303)
        assert web.cookies.get("lb_session")  # signed in
        pool = app.state.bay.engine.store.engine
        held = []
        try:
            while pool.pool.checkedout() < pool.pool.size() + pool.pool._max_overflow:
                held.append(pool.connect())
            page = web.get("/no-such-page")
            assert page.status_code == 404
            assert "admin" in page.text  # the page names whom the session names
            assert web.get("/healthz").status_code == 200
        finally:
            for connection in held:
                connection.close()


def test_the_leader_lock_sends_one_statement_at_a_time_on_its_connection(postgres):
    # Its one database connection was used by every loop thread at once, with no lock.
    store = Store(postgres.new_database())
    store.migrate()
    lock = LeaderLock(store)
    inside, most = [0], [0]
    guard = threading.Lock()

    def enter(*_: object) -> None:
        with guard:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
        threading.Event().wait(0.01)  # a statement that takes a moment, as on a busy server
        with guard:
            inside[0] -= 1

    assert lock.holds()
    event.listen(store.engine, "before_cursor_execute", enter)
    try:
        threads = [
            threading.Thread(target=lambda: [lock.holds() for _ in range(20)]) for _ in range(4)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        event.remove(store.engine, "before_cursor_execute", enter)
        lock.release()
        store.close()
    assert most[0] == 1
