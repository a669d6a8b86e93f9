import threading

from launchbay.engine.jobs import Jobs
from tests.support import wait_until


def drain(jobs: Jobs, *spaces: int) -> None:
    wait_until(lambda: not any(jobs.busy(s) for s in spaces), timeout=10, what="jobs done")
    jobs.shutdown()


def test_jobs_of_one_space_never_overlap():
    jobs = Jobs(workers=4)
    running = 0
    overlaps = 0
    lock = threading.Lock()

    def job() -> None:
        nonlocal running, overlaps
        with lock:
            running += 1
            overlaps += running > 1
        threading.Event().wait(0.02)
        with lock:
            running -= 1

    for i in range(4):
        jobs.submit(1, f"kind-{i}", job, label="s")
    drain(jobs, 1)
    assert overlaps == 0 and running == 0


def test_jobs_of_different_spaces_run_at_the_same_time():
    jobs = Jobs(workers=2)
    a_started = threading.Event()
    b_started = threading.Event()
    results = []

    def a() -> None:
        a_started.set()
        results.append(b_started.wait(timeout=5))

    def b() -> None:
        b_started.set()
        results.append(a_started.wait(timeout=5))

    jobs.submit(1, "x", a, label="one")
    jobs.submit(2, "x", b, label="two")
    drain(jobs, 1, 2)
    assert results == [True, True]


def test_a_job_already_queued_for_a_space_is_not_queued_twice():
    jobs = Jobs(workers=1)
    gate = threading.Event()
    calls = []
    jobs.submit(1, "block", gate.wait, label="s")
    assert jobs.submit(1, "provision", lambda: calls.append(1), label="s")
    assert not jobs.submit(1, "provision", lambda: calls.append(2), label="s")
    assert jobs.busy(1)
    gate.set()
    drain(jobs, 1)
    assert calls == [1]


def test_a_failing_job_does_not_stop_the_next(caplog):
    jobs = Jobs(workers=1)
    calls = []

    def boom() -> None:
        raise RuntimeError("boom")

    jobs.submit(1, "a", boom, label="s")
    jobs.submit(1, "b", lambda: calls.append("b"), label="s")
    drain(jobs, 1)
    assert calls == ["b"]
    assert "space s: a job failed unexpectedly" in caplog.text
