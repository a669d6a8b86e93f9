"""The engine's logic, in-process and fast, on the fake runtime (held to the runtime
contract by test_runtime_contract.py) with a clock the test controls."""

from __future__ import annotations

import dataclasses
import threading
from datetime import timedelta
from pathlib import Path

import pytest

from launchbay.domain.auth import Actor
from launchbay.domain.errors import Conflict, Invalid, NotFound, Refused
from launchbay.domain.phases import Phase
from launchbay.engine.assembly import Launchbay
from launchbay.engine.catalog import TemplateCatalog
from launchbay.engine.engine import Engine, EngineSettings
from launchbay.engine.loops import reap_once, reconcile_once
from launchbay.engine.queries import Queries
from launchbay.engine.requests import CreateSpace, Requests
from launchbay.runtimes.base import RuntimeUnavailable
from launchbay.store.db import Store, sqlite_url
from tests.fake_runtime import FakeRuntime, Script
from tests.support import Clock, wait_until

ANN = Actor("ann")
PAIR = """\
name: pair
ttl: {default: 1h, max: 2h}
services:
  db:
    health: {tcp: true, interval: 20ms, timeout: 5s}
    process: {command: [db]}
  web:
    depends_on: [db]
    health: {http: /, interval: 20ms, timeout: 5s}
    endpoints: [{name: home, path: /}]
    process: {command: [web]}
"""


@pytest.fixture
def fake() -> FakeRuntime:
    return FakeRuntime(scripts={"db": Script(ready_after=0.1), "web": Script()})


@pytest.fixture
def engine(tmp_path: Path, fake: FakeRuntime):
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "pair.yaml").write_text(PAIR)
    store = Store(sqlite_url(tmp_path))
    store.migrate()
    made = Engine(
        store=store,
        runtimes={"process": fake},
        catalog=TemplateCatalog(tmp_path / "templates"),
        settings=EngineSettings(max_restarts=2),
        clock=Clock(),
    )
    Launchbay.of(made)
    made.start()
    yield made
    made.stop()
    store.close()


def settle(engine: Engine, name: str, phases: set[str]) -> str:
    return wait_until(
        lambda: (p := Queries(engine).space(name).phase) in phases and p,
        timeout=10,
        interval=0.02,
        what=f"{name} in {phases}",
    )


def create(engine: Engine, name: str) -> None:
    Requests(engine).create(CreateSpace(name=name, template="pair"), actor=ANN)


def test_services_start_in_dependency_order_and_the_space_gets_ready(engine, fake):
    create(engine, "one")
    assert settle(engine, "one", {"ready", "failed"}) == "ready"
    runs = fake._runs["one"]
    assert runs["web"].started >= runs["db"].started + 0.1  # after db was healthy
    space = Queries(engine).space("one")
    assert space.ready_seconds and space.ready_seconds >= 0.1
    assert space.services[1].endpoints["home"].startswith("http://127.0.0.1:")


OWN_HEALTH = """\
name: own
ttl: {default: 1h, max: 2h}
services:
  db:
    process: {command: [db]}
  web:
    depends_on: [db]
    process: {command: [web]}
"""


def test_without_a_health_check_the_runtimes_own_readiness_decides(engine, fake, tmp_path):
    # A service without `health:` was ready 1 s after start whatever the runtime knew
    # (a Deployment still rolling out, a container whose healthcheck was `starting`).
    (tmp_path / "templates" / "own.yaml").write_text(OWN_HEALTH)
    fake.scripts = {"db": Script(own_ready_after=1.5), "web": Script()}
    Requests(engine).create(CreateSpace(name="own", template="own"), actor=ANN)
    assert settle(engine, "own", {"ready", "failed"}) == "ready"
    runs = fake._runs["own"]
    assert runs["web"].started >= runs["db"].started + 1.5


def test_a_service_that_exits_fails_the_space_naming_it_and_stops_the_rest(engine, fake):
    fake.scripts = {"db": Script(), "web": Script(exit_code=2)}
    create(engine, "bad")
    assert settle(engine, "bad", {"ready", "failed"}) == "failed"
    assert "service 'web': exited with code 2" in Queries(engine).space("bad").reason
    assert fake.running("bad") == set()


def test_delete_removes_everything_and_sleep_then_wake_runs_it_again(engine, fake):
    create(engine, "nap")
    settle(engine, "nap", {"ready"})
    Requests(engine).sleep("nap", actor=ANN)
    settle(engine, "nap", {"sleeping"})
    assert fake.running("nap") == set()
    Requests(engine).wake("nap", actor=ANN)
    settle(engine, "nap", {"ready"})
    assert fake.running("nap") == {"db", "web"}
    Requests(engine).delete("nap", actor=ANN)
    settle(engine, "nap", {"deleted"})
    assert "nap" not in fake.spaces()


def test_a_service_that_dies_is_restarted_until_it_runs_out_of_restarts_and_says_why(engine, fake):
    create(engine, "flaky")
    settle(engine, "flaky", {"ready"})
    for restart in (1, 2):
        fake.kill("flaky", "web")
        wait_until(
            lambda restart=restart: (
                reconcile_once(engine)
                or Queries(engine).space("flaky").services[1].restarts == restart
            ),
            timeout=10,
            interval=0.05,
            what=f"restart {restart}",
        )
        settle(engine, "flaky", {"ready"})
    fake.kill("flaky", "web")
    wait_until(
        lambda: reconcile_once(engine) or Queries(engine).space("flaky").phase == "degraded",
        timeout=10,
        interval=0.05,
        what="degraded",
    )
    assert "web failed" in Queries(engine).space("flaky").reason
    assert "restart" in Queries(engine).space("flaky").reason  # why: out of restarts


def test_a_restart_that_meets_a_runtime_outage_is_retried_not_counted_as_the_services_failure(
    engine, fake
):
    # The restart job took any error for the service's: an outage of the runtime marked
    # the service failed for good.
    create(engine, "outage")
    settle(engine, "outage", {"ready"})
    fake.faults["start"] = [RuntimeUnavailable("the backend does not answer", delay=0)]
    fake.kill("outage", "web")
    wait_until(
        lambda: reconcile_once(engine) or "retry" in kinds(engine, "outage"),
        timeout=10,
        interval=0.05,
        what="the restart retried",
    )
    settle(engine, "outage", {"ready"})
    web = Queries(engine).space("outage").services[1]
    assert (web.status, web.restarts) == ("ready", 1)
    assert "restart-failed" not in kinds(engine, "outage")


def test_the_reaper_deletes_a_space_past_its_ttl(engine, fake):
    create(engine, "short")
    settle(engine, "short", {"ready"})
    engine.clock.now += timedelta(hours=2)
    reap_once(engine)
    settle(engine, "short", {"deleted"})
    assert "short" not in fake.spaces()


# -- one failure path: each error class from the runtime, through the one job wrapper ----


def kinds(engine: Engine, name: str) -> list[str]:
    return [e.kind for e in Queries(engine).events(name)]


def test_unavailable_is_retried_and_the_space_comes_up(engine, fake):
    fake.faults["start"] = [RuntimeUnavailable("the backend does not answer", delay=0)]
    create(engine, "retry")
    assert settle(engine, "retry", {"ready", "failed"}) == "ready"
    assert kinds(engine, "retry").count("retry") == 1


def test_refused_fails_the_space_at_once_saying_why(engine, fake):
    fake.faults["start"] = [Refused("no rights to start db")]
    create(engine, "denied")
    assert settle(engine, "denied", {"ready", "failed"}) == "failed"
    assert "no rights to start db" in Queries(engine).space("denied").reason
    assert "retry" not in kinds(engine, "denied")


def test_a_backend_error_while_reading_a_failed_services_log_still_fails_the_space(engine, fake):
    # logs() is a generator: the guard once wrapped only the call that made it, so an
    # error raised while reading escaped as "unexpected error", the space stayed
    # provisioning and the reconciler provisioned it again a minute later.
    fake.scripts = {"db": Script(), "web": Script(exit_code=2)}
    fake.faults["logs"] = [ConnectionResetError("the log stream broke")]
    create(engine, "tail")
    assert settle(engine, "tail", {"ready", "failed"}) == "failed"
    assert "service 'web': exited with code 2" in Queries(engine).space("tail").reason
    (job,) = [j for j in Queries(engine).jobs("tail") if j.kind == "provision"]
    assert "unexpected" not in job.reason


def test_a_follow_its_reader_left_never_marks_the_runtime_unavailable(engine, fake):
    # The stream closed under a follow whose client went away raises as it closes; read
    # under the runtime's guard, that once counted as the whole runtime failing.
    create(engine, "follow")
    settle(engine, "follow", {"ready"})
    fake.faults["follow-closed"] = [OSError("the connection was closed")]
    stop = threading.Event()
    lines = Queries(engine).logs("follow", "web", tail=10, follow=True, stop=stop)
    next(lines)
    stop.set()
    assert list(lines) == []
    assert engine.board.state("process").available


def test_not_found_fails_the_job_without_retry_and_the_reason_is_kept(engine, fake):
    create(engine, "lost")
    settle(engine, "lost", {"ready"})
    fake.faults["destroy"] = [NotFound("no such network")]
    Requests(engine).delete("lost", actor=ANN)
    wait_until(
        lambda: "job-failed" in kinds(engine, "lost"), timeout=10, interval=0.02, what="failed"
    )
    (job,) = [j for j in Queries(engine).jobs("lost") if j.kind == "delete"]
    assert (job.state, job.attempts, job.reason) == ("failed", 1, "no such network")
    assert Queries(engine).space("lost").phase == "deleting"  # never reported deleted while it runs


def test_conflict_is_retried_and_the_change_goes_through(engine, fake):
    create(engine, "race")
    settle(engine, "race", {"ready"})
    fake.faults["stop"] = [Conflict("changed meanwhile")]
    Requests(engine).sleep("race", actor=ANN)
    assert settle(engine, "race", {"sleeping"}) == "sleeping"
    assert kinds(engine, "race").count("retry") == 1


HELM_ONLY = """\
name: chart-only
ttl: {default: 1h, max: 2h}
services:
  api:
    helm: {chart: ./charts/api}
"""


def test_without_a_runtime_the_first_that_can_run_the_template_is_chosen(engine, tmp_path):
    (tmp_path / "templates" / "chart-only.yaml").write_text(HELM_ONLY)
    made = Requests(engine).create(CreateSpace(name="picked", template="pair"), actor=ANN)
    assert made.runtime == "process"
    with pytest.raises(Invalid, match=r"runs on no runtime this server enables \(process\)") as e:
        Requests(engine).create(CreateSpace(name="nowhere", template="chart-only"), actor=ANN)
    assert "written for helm" in e.value.message
    with pytest.raises(Invalid, match="cannot run on process: api has no process section"):
        Requests(engine).create(
            CreateSpace(name="nowhere", template="chart-only", runtime="process"), actor=ANN
        )
    with pytest.raises(NotFound):
        Queries(engine).space("nowhere")  # nothing was written


def test_answers_are_frozen_views_that_do_not_change_under_the_reader(engine):
    create(engine, "still")
    seen = Queries(engine).space("still")
    settle(engine, "still", {"ready"})
    assert seen.phase == "pending"  # the copy read then, not the row as it is now
    with pytest.raises(dataclasses.FrozenInstanceError):
        seen.phase = Phase.READY  # type: ignore[misc]
    assert Queries(engine).space("still").phase == "ready"


def test_recreate_removes_what_ran_and_makes_it_again_with_the_same_spec(engine, fake):
    create(engine, "again")
    assert settle(engine, "again", {"ready", "failed"}) == "ready"
    before = Queries(engine).space("again")
    first = fake._runs["again"]["web"].started
    fake.scripts["web"] = Script(exit_code=3)  # the next start of web fails
    Requests(engine).recreate("again", actor=ANN)
    assert settle(engine, "again", {"ready", "failed"}) == "failed"
    fake.scripts["web"] = Script()
    Requests(engine).recreate("again", actor=ANN)
    assert settle(engine, "again", {"ready", "failed"}) == "ready"
    after = Queries(engine).space("again")
    assert fake._runs["again"]["web"].started > first  # made again, not kept
    assert (after.expires_at, after.params, after.template) == (
        before.expires_at,
        before.params,
        before.template,
    )
    assert after.generation == before.generation + 2
    kinds = [e.kind for e in Queries(engine).events("again")]
    assert kinds.count("recreate-requested") == 2 and kinds.count("recreating") == 2
    with pytest.raises(Conflict, match="only a failed or degraded space is retried"):
        Requests(engine).retry("again", actor=ANN)
    Requests(engine).sleep("again", actor=ANN)  # a sleeping space can be recreated too
    assert settle(engine, "again", {"sleeping"}) == "sleeping"
    Requests(engine).recreate("again", actor=ANN)
    assert settle(engine, "again", {"ready", "failed"}) == "ready"
