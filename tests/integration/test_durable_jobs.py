"""The job queue in the store, on SQLite and a real PostgreSQL: claiming, one running job
per space, leases that lapse, and the one wrapper that retries or fails a job."""

from __future__ import annotations

import itertools
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from launchbay.domain.errors import Invalid, TemporaryError
from launchbay.domain.jobs import MAX_ATTEMPTS, JobKind, JobState
from launchbay.engine.jobs import Claimed, Workers
from launchbay.engine.metrics import EngineMetrics
from launchbay.store import jobs as store_jobs
from launchbay.store.db import Store
from launchbay.store.models import Event, Space
from tests.support import wait_until

LEASE = timedelta(seconds=30)


def now() -> datetime:
    return datetime.now(UTC)


def add_space(store: Store, name: str, *, node: str | None = None) -> Space:
    with store.write() as s:
        space = Space(
            name=name,
            live_name=name,
            template="t",
            runtime="process",
            owner="ann",
            params={},
            overrides={},
            phase="ready",
            reason="",
            created_at=now(),
            updated_at=now(),
            expires_at=now() + timedelta(hours=1),
            node=node,
        )
        s.add(space)
        s.flush()
        return space


def enqueue(store: Store, space: Space, kind: JobKind = JobKind.PROVISION, **args: str) -> int:
    with store.write() as s:
        return store_jobs.enqueue(s, space, kind, now=now(), args=args).id


def claim(store: Store, owner: str = "n1/a", node: str = "n1", lease: timedelta = LEASE):
    with store.write() as s:
        job = store_jobs.claim(s, node=node, owner=owner, clock=now, lease=lease)
        return None if job is None else (job.id, job.space_id, job.attempts)


def finish(store: Store, job_id: int, owner: str = "n1/a") -> None:
    with store.write() as s:
        store_jobs.finish(s, job_id, owner=owner, state=JobState.DONE, reason="", now=now())


def state(store: Store, job_id: int) -> JobState:
    with store.read() as s:
        job = store_jobs.by_id(s, job_id)
        assert job is not None
        return job.state


def test_jobs_of_one_space_run_one_at_a_time_in_order_and_spaces_in_parallel(store):
    a, b = add_space(store, "a"), add_space(store, "b")
    a1, a2 = enqueue(store, a, JobKind.PROVISION), enqueue(store, a, JobKind.SLEEP)
    b1 = enqueue(store, b, JobKind.DELETE)
    assert claim(store)[0] == a1
    assert claim(store)[0] == b1
    assert claim(store) is None  # a2 waits for a1
    finish(store, a1)
    assert claim(store)[0] == a2


def test_the_same_queued_job_is_not_queued_twice(store):
    a = add_space(store, "a")
    first = enqueue(store, a, JobKind.RESTART, service="web", reason="died")
    assert enqueue(store, a, JobKind.RESTART, service="web", reason="died") == first
    assert enqueue(store, a, JobKind.RESTART, service="db", reason="died") != first


def test_a_job_whose_lease_lapsed_is_taken_over_by_another_worker(store):
    a = add_space(store, "a")
    job = enqueue(store, a)
    assert claim(store, owner="n1/dead", lease=timedelta(seconds=-1))[0] == job
    taken = claim(store, owner="n1/alive")
    assert taken == (job, a.id, 2)
    with store.write() as s:  # the first worker's late outcome is ignored
        store_jobs.finish(s, job, owner="n1/dead", state=JobState.FAILED, reason="x", now=now())
    assert state(store, job) is JobState.RUNNING


def test_a_restarted_server_takes_back_its_own_running_jobs_at_once(store):
    a = add_space(store, "a")
    job = enqueue(store, a)
    claim(store, owner="n1/before-the-crash")
    with store.write() as s:
        stale = store_jobs.stale_owners(s, node="n1", current="n1/after")
        assert stale == ["n1/before-the-crash"]
        assert store_jobs.release(s, owners=stale, now=now()) == 1
    assert claim(store, owner="n1/after") == (job, a.id, 1)


def test_a_job_pinned_to_a_node_runs_only_there(store):
    local = add_space(store, "local", node="n1")
    job = enqueue(store, local)
    assert claim(store, owner="n2/x", node="n2") is None
    assert claim(store, owner="n1/x", node="n1")[0] == job


def test_concurrent_workers_never_run_two_jobs_of_one_space_at_once(store):
    """Eight workers race for 60 jobs over 4 spaces: per space, the recorded run intervals
    never overlap, and every job runs exactly once."""
    spaces = [add_space(store, f"s{i}") for i in range(4)]
    ids = [enqueue(store, spaces[i % 4], JobKind.REDEPLOY, n=str(i)) for i in range(60)]
    runs: list[tuple[int, int, float, float]] = []
    lock = threading.Lock()

    def worker(owner: str) -> None:
        idle_since = time.monotonic()
        while time.monotonic() - idle_since < 2:
            got = claim(store, owner=owner)
            if got is None:
                time.sleep(0.01)
                continue
            idle_since = time.monotonic()
            started = time.monotonic()
            time.sleep(0.005)
            ended = time.monotonic()
            finish(store, got[0], owner=owner)
            with lock:
                runs.append((got[1], got[0], started, ended))

    threads = [threading.Thread(target=worker, args=(f"n1/w{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r[1] for r in runs) == ids
    for space in spaces:
        mine = sorted((r[2], r[3]) for r in runs if r[0] == space.id)
        assert all(prev[1] <= nxt[0] for prev, nxt in itertools.pairwise(mine))


@pytest.fixture
def workers(store):
    made: list[Workers] = []

    def make(**handlers) -> Workers:
        w = Workers(
            store,
            node="n1",
            slots=4,
            record=lambda *a: record(store, *a),
            metrics=EngineMetrics(),
            poll=0.05,
        )
        for kind, handler in handlers.items():
            w.handle(JobKind(kind), handler)
        w.start()
        made.append(w)
        return w

    yield make
    for w in made:
        w.stop()


def record(store: Store, space_id: int, kind: str, message: str) -> None:
    with store.write() as s:
        s.add(Event(space_id=space_id, at=now(), actor="system", kind=kind, message=message))


def events(store: Store, space: Space) -> list[tuple[str, str]]:
    with store.read() as s:
        rows = s.query(Event).filter(Event.space_id == space.id).order_by(Event.id)
        return [(e.kind, e.message) for e in rows]


def wait_finished(store: Store, job_id: int) -> JobState:
    return wait_until(
        lambda: (st := state(store, job_id)).finished and st, timeout=60, what="job finished"
    )


def test_a_temporary_failure_is_retried_with_backoff_then_fails_with_the_reason(
    store, workers, monkeypatch
):
    from launchbay.engine import jobs as engine_jobs

    monkeypatch.setattr(engine_jobs, "backoff", lambda attempt, asked: timedelta(0))
    tries: list[int] = []

    def flaky(job: Claimed) -> None:
        tries.append(job.attempts)
        raise TemporaryError("the runtime does not answer", delay=0)

    made = workers(provision=flaky)
    space = add_space(store, "a")
    job = enqueue(store, space)
    assert wait_finished(store, job) is JobState.FAILED
    assert tries == list(range(1, MAX_ATTEMPTS + 1))
    with store.read() as s:
        reason = store_jobs.by_id(s, job).reason
    assert reason == f"gave up after {MAX_ATTEMPTS} attempts: the runtime does not answer"
    kinds = [k for k, _ in events(store, space)]
    assert kinds == ["retry"] * (MAX_ATTEMPTS - 1) + ["job-failed"]
    metric = made._metrics.registry.get_sample_value
    assert metric("launchbay_jobs_retried_total", {"kind": "provision"}) == MAX_ATTEMPTS - 1
    assert metric("launchbay_jobs_finished_total", {"kind": "provision", "outcome": "failed"}) == 1


def test_a_temporary_failure_that_clears_ends_done(store, workers, monkeypatch):
    from launchbay.engine import jobs as engine_jobs

    monkeypatch.setattr(engine_jobs, "backoff", lambda attempt, asked: timedelta(0))

    def twice_then_fine(job: Claimed) -> None:
        if job.attempts < 3:
            raise TemporaryError("not yet", delay=0)

    workers(provision=twice_then_fine)
    space = add_space(store, "a")
    job = enqueue(store, space)
    assert wait_finished(store, job) is JobState.DONE
    assert [k for k, _ in events(store, space)] == ["retry", "retry"]


def test_a_refused_job_is_not_retried_and_says_why(store, workers):
    tries: list[int] = []

    def refused(job: Claimed) -> None:
        tries.append(job.attempts)
        raise Invalid("the template has no service 'web'")

    workers(provision=refused)
    space = add_space(store, "a")
    job = enqueue(store, space)
    assert wait_finished(store, job) is JobState.FAILED
    assert tries == [1]
    # The job's end is written first, then its event: wait for the event.
    wait_until(lambda: events(store, space), timeout=30, what="the job-failed event")
    assert events(store, space) == [
        ("job-failed", "provision failed: the template has no service 'web'")
    ]


def test_a_bug_in_a_job_fails_that_job_only(store, workers):
    def buggy(job: Claimed) -> None:
        raise KeyError("oops")

    workers(provision=buggy, sleep=lambda job: None)
    a, b = add_space(store, "a"), add_space(store, "b")
    bad, good = enqueue(store, a), enqueue(store, b, JobKind.SLEEP)
    assert wait_finished(store, bad) is JobState.FAILED
    assert wait_finished(store, good) is JobState.DONE
    with store.read() as s:
        assert store_jobs.by_id(s, bad).reason == "unexpected error: KeyError: 'oops'"


def test_a_job_interrupted_by_a_stopping_server_is_queued_again(store):
    started = threading.Event()

    def long(job: Claimed) -> None:
        from launchbay.engine.jobs import Cancelled

        started.set()
        while not w.stopping.wait(0.05):
            pass
        raise Cancelled()

    w = Workers(store, node="n1", slots=2, record=lambda *a: None, poll=0.05)
    w.handle(JobKind.PROVISION, long)
    w.start()
    job = enqueue(store, add_space(store, "a"))
    assert started.wait(10)
    w.stop()
    with store.read() as s:
        left = store_jobs.by_id(s, job)
        assert (left.state, left.owner, left.attempts) == (JobState.QUEUED, None, 0)


def test_a_job_that_ended_between_heartbeats_never_cancels_the_next_job_of_its_space(store):
    """Seen once in CI: the heartbeat took a job that had just ended for one taken over
    elsewhere, and cancelled its space, so the space's next job (a wake) stopped at once."""
    from launchbay.engine.jobs import Cancelled

    def short(job: Claimed) -> None:
        time.sleep(0.003)
        if w.cancel(job.space_id).is_set():
            raise Cancelled()

    w = Workers(store, node="n1", slots=2, record=lambda *a: None, poll=0.01, heartbeat=0.001)
    w.handle(JobKind.REDEPLOY, short)
    w.start()
    try:
        space = add_space(store, "a")
        ids = [enqueue(store, space, JobKind.REDEPLOY, n=str(i)) for i in range(60)]
        for job_id in ids:
            wait_finished(store, job_id)
        with store.read() as s:
            reasons = [store_jobs.by_id(s, i).reason for i in ids]
        assert reasons == [""] * len(ids)
    finally:
        w.stop()


def test_a_busy_spaces_backlog_never_hides_another_spaces_job(store):
    """The claim looked at the 32 oldest jobs only: 40 jobs queued behind a running one of
    the same space kept every other space waiting."""
    busy, idle = add_space(store, "busy"), add_space(store, "idle")
    running = enqueue(store, busy, JobKind.PROVISION)
    assert claim(store)[0] == running
    for i in range(40):
        enqueue(store, busy, JobKind.RESTART, service=f"s{i}", reason="died")
    waiting = enqueue(store, idle, JobKind.SLEEP)
    assert claim(store)[0] == waiting
    assert claim(store) is None
