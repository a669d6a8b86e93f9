"""Accepted work survives kill -9, and replicas on one PostgreSQL never work on one space
at once. Real servers, real processes, a real PostgreSQL."""

from __future__ import annotations

import itertools
import random
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from launchbay.store.db import Store
from launchbay.store.models import Job, Space
from tests import chaos
from tests.integration import templates as extra
from tests.support import ServerProcess, labelled_processes, wait_until


@pytest.fixture
def templates(templates):
    extra.install(templates, "SLOW", "QUICK")
    return templates


def test_kill_9_at_random_moments_during_mixed_operations_every_job_ends_and_store_matches_reality(
    server,
):
    report = chaos.run(server, operations=60, in_flight=10, kills=3, seed=11)
    assert report.kills == 3
    accepted = sum(n for answer, n in report.answers.items() if answer.split()[1].startswith("2"))
    assert accepted >= 10, report.answers
    assert report.converged, report.as_dict()
    assert report.jobs["done"] > 0


def test_a_deploy_interrupted_by_kill_9_is_finished_after_the_restart(server):
    """It stayed `running` forever: the job lived only in the crashed server's memory."""
    with server.client() as c:
        c.post("/api/v1/spaces", json={"name": "mid", "template": "slow"}).raise_for_status()
        server.wait_phase("mid", {"ready"})
        deploy = c.post(
            "/api/v1/spaces/mid/deploy", json={"service": "second", "version": "v2"}
        ).json()
    wait_until(
        lambda: any(
            j["state"] == "running" and j["kind"] == "redeploy" for j in server.space("mid")["jobs"]
        ),
        timeout=20,
        what="the redeploy running",
    )
    server.kill()
    server.start()
    finished = wait_until(
        lambda: (
            (
                d := next(
                    x
                    for x in server.get_json("/api/v1/spaces/mid/deploys")
                    if x["id"] == deploy["id"]
                )
            )["result"]
            in ("succeeded", "failed")
            and d
        ),
        timeout=60,
        what="the deploy finished",
    )
    assert finished["result"] == "succeeded", finished
    space = server.space("mid")
    assert space["phase"] == "ready"
    assert space["observed_generation"] == space["generation"]
    assert {s["name"]: s["version"] for s in space["services"]}["second"] == "v2"


def test_show_says_what_is_queued_and_running(server):
    with server.client() as c:
        c.post("/api/v1/spaces", json={"name": "busy", "template": "slow"}).raise_for_status()
        c.post("/api/v1/spaces/busy/deploy", json={"service": "first", "version": "v2"})

    def unfinished() -> list[tuple[str, str]]:
        jobs = server.space("busy")["jobs"]
        return [(j["kind"], j["state"]) for j in jobs if j["state"] in ("queued", "running")]

    # The deploy waits behind the provisioning (one job per space at a time).
    wait_until(
        lambda: unfinished() == [("provision", "running"), ("redeploy", "queued")],
        timeout=20,
        what="provision running, redeploy queued",
    )
    shown = server.bay("space", "show", "busy")
    assert shown.returncode == 0
    assert "work: provision running" in shown.stdout, shown.stdout
    assert "redeploy queued" in shown.stdout, shown.stdout
    server.wait_phase("busy", {"ready"})


def test_two_servers_on_one_postgresql_start_together_and_never_work_on_one_space_at_once(
    postgres, tmp_path, templates
):
    url = postgres.new_database()
    replicas = [
        ServerProcess(
            home=tmp_path / name,
            templates=templates,
            extra_args=["--db", url, "--reconcile-interval", "1", "--orphan-grace", "2"],
            extra_env={"LAUNCHBAY_SESSION_SECRET": "s" * 48},
        )
        for name in ("a", "b")
    ]
    for replica in replicas:
        replica.home.mkdir()
    starting = [threading.Thread(target=r.start) for r in replicas]
    try:
        for thread in starting:
            thread.start()
        for thread in starting:
            thread.join()
        token = next(
            (r.data_dir / "admin-token").read_text().strip()
            for r in replicas
            if (r.data_dir / "admin-token").exists()
        )
        names = [f"both-{i}" for i in range(4)]
        rng = random.Random(5)

        def one(i: int) -> str:
            return chaos.operate(rng.choice(replicas).url, token, random.Random(i), names)

        with ThreadPoolExecutor(max_workers=8) as pool:
            answers = list(pool.map(one, range(80)))
        assert not [a for a in answers if a.endswith("down")]
        store = Store(url)
        try:
            wait_until(
                lambda: not _unfinished(store), timeout=120, interval=0.5, what="every job finished"
            )
            with store.read() as s:
                jobs = [j for j in s.query(Job) if j.started_at and j.finished_at]
                spaces = list(s.query(Space))
        finally:
            store.close()
        assert jobs
        for space_id, group in itertools.groupby(
            sorted(jobs, key=lambda j: j.space_id), lambda j: j.space_id
        ):
            runs = sorted((j.started_at, j.finished_at) for j in group)
            assert all(a[1] <= b[0] for a, b in itertools.pairwise(runs)), (space_id, runs)
        deleted = {x.name for x in spaces if x.live_name is None} - {
            x.name for x in spaces if x.live_name is not None
        }
        for replica in replicas:
            running = labelled_processes(replica.data_dir / "runtime" / "process")
            assert not {env["LAUNCHBAY_SPACE"] for env in running.values()} & deleted
    finally:
        for replica in replicas:
            replica.stop()


def _unfinished(store: Store) -> int:
    with store.read() as s:
        return s.query(Job).filter(Job.state.in_(("queued", "running"))).count()
