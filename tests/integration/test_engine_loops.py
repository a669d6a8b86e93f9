"""The reaper and the reconciler, driven pass by pass with a clock the test controls."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from launchbay.domain.auth import Actor
from launchbay.domain.errors import Conflict
from launchbay.engine.assembly import Launchbay
from launchbay.engine.catalog import TemplateCatalog
from launchbay.engine.engine import Engine, EngineSettings
from launchbay.engine.loops import reap_once, reconcile_once
from launchbay.engine.queries import Queries
from launchbay.engine.requests import CreateSpace, Requests
from launchbay.runtimes.base import RuntimeUnavailable
from launchbay.runtimes.process import ProcessRuntime
from launchbay.store import queries as q
from tests.integration import templates as extra
from tests.support import Clock, labelled_processes, wait_until

ANN = Actor("ann")


class UnreadableRuntime(ProcessRuntime):
    """A process runtime whose reads (or deletes) fail, as a daemon that stopped answering would."""

    broken = False
    broken_destroy = False

    def destroy(self, space):
        if self.broken_destroy:
            raise RuntimeUnavailable("runtime does not answer")
        super().destroy(space)

    def spaces(self):
        if self.broken:
            raise RuntimeUnavailable("runtime does not answer")
        return super().spaces()

    def probe(self, space, service):
        if self.broken:
            raise RuntimeUnavailable("runtime does not answer")
        return super().probe(space, service)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make_engine(store, templates: Path, tmp_path: Path, clock: Clock):
    extra.install(templates, "QUICK")
    engines: list[Engine] = []

    def make(**settings) -> Engine:
        runtime = UnreadableRuntime(tmp_path / "runtime", stop_grace=1.0)
        engine = Engine(
            store=store,
            runtimes={"process": runtime},
            catalog=TemplateCatalog(templates),
            settings=EngineSettings(**({"min_ttl": timedelta(seconds=1)} | settings)),
            clock=clock,
        )
        Launchbay.of(engine)  # every job kind; the test drives the loops pass by pass
        engine.start()
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.stop()
        for name in engine.board.runtimes["process"].spaces():
            engine.board.runtimes["process"].destroy_orphan(name)


def phase(engine: Engine, name: str) -> str:
    return Queries(engine).space(name).phase


def wait_phase(engine: Engine, name: str, phases: set[str]) -> None:
    wait_until(lambda: phase(engine, name) in phases, timeout=30, what=f"{name} in {phases}")


def create(engine: Engine, name: str, ttl: str = "10s") -> None:
    Requests(engine).create(CreateSpace(name=name, template="quick", ttl=ttl), actor=ANN)
    wait_phase(engine, name, {"ready"})


def test_the_reaper_deletes_only_spaces_past_their_expiry(make_engine, clock):
    engine = make_engine()
    create(engine, "short", ttl="10s")
    create(engine, "long", ttl="1h")
    reap_once(engine)
    assert phase(engine, "short") == "ready"
    clock.advance(seconds=11)
    reap_once(engine)
    wait_phase(engine, "short", {"deleted"})
    assert phase(engine, "long") == "ready"
    assert labelled_processes(engine.board.runtimes["process"].root, "short") == {}


def test_copilot_mode_marks_and_records_but_never_deletes(make_engine, clock):
    engine = make_engine(copilot=True)
    create(engine, "kept", ttl="10s")
    clock.advance(seconds=11)
    reap_once(engine)
    reap_once(engine)
    space = Queries(engine).space("kept")
    assert space.phase == "ready" and space.expired_at == clock.now
    expired = [e for e in Queries(engine).events("kept") if e.kind == "expired"]
    assert len(expired) == 1 and "would delete" in expired[0].message
    # Cleanup debt, for Prometheus: one space, 1 s past its expiry.
    metric = engine.metrics.registry.get_sample_value
    assert metric("launchbay_spaces_past_expiry") == 1
    assert metric("launchbay_spaces_past_expiry_max_seconds") == pytest.approx(1, abs=0.01)
    assert labelled_processes(engine.board.runtimes["process"].root, "kept")


def test_a_failed_store_read_deletes_nothing(make_engine, clock, monkeypatch):
    engine = make_engine()
    create(engine, "safe", ttl="10s")
    clock.advance(hours=1)

    def broken_read():
        raise OSError("database unavailable")

    monkeypatch.setattr(engine.store, "read", broken_read)
    with pytest.raises(OSError):
        reap_once(engine)
    with pytest.raises(OSError):
        reconcile_once(engine)
    monkeypatch.undo()
    assert phase(engine, "safe") == "ready"
    assert labelled_processes(engine.board.runtimes["process"].root, "safe")


def test_a_failed_runtime_read_deletes_and_restarts_nothing(make_engine):
    engine = make_engine(orphan_grace=0)
    create(engine, "steady", ttl="1h")
    engine.board.runtimes["process"].broken = True
    reconcile_once(engine)
    reconcile_once(engine)
    engine.board.runtimes["process"].broken = False
    space = Queries(engine).space("steady")
    assert space.phase == "ready" and space.services[0].restarts == 0
    assert [e.kind for e in Queries(engine).events("steady")].count("restart") == 0


def test_an_empty_store_never_makes_everything_an_orphan(make_engine, tmp_path):
    engine = make_engine(orphan_grace=0)
    (tmp_path / "runtime" / "stray").mkdir(parents=True)
    reconcile_once(engine)
    assert (tmp_path / "runtime" / "stray").exists()


def test_orphans_are_removed_only_after_the_grace_period(make_engine, tmp_path):
    engine = make_engine(orphan_grace=0.5)
    create(engine, "owned", ttl="1h")
    (tmp_path / "runtime" / "stray").mkdir(parents=True)
    reconcile_once(engine)
    assert (tmp_path / "runtime" / "stray").exists()
    wait_until(
        lambda: reconcile_once(engine) or not (tmp_path / "runtime" / "stray").exists(),
        timeout=10,
        what="orphan removed",
    )
    assert (tmp_path / "runtime" / "owned").exists()
    metric = engine.metrics.registry.get_sample_value
    assert metric("launchbay_orphans_found_total", {"runtime": "process"}) == 1
    assert metric("launchbay_orphans_removed_total", {"runtime": "process"}) == 1


def test_delete_is_idempotent_and_an_interrupted_delete_is_finished(make_engine):
    engine = make_engine()
    create(engine, "twice", ttl="1h")
    runtime = engine.board.runtimes["process"]
    runtime.broken_destroy = True
    Requests(engine).delete("twice", actor=ANN)
    Requests(engine).delete("twice", actor=ANN)
    wait_until(
        lambda: any(e.kind == "retry" for e in Queries(engine).events("twice")),
        timeout=10,
        what="retry",
    )
    assert phase(engine, "twice") == "deleting"
    with pytest.raises(Conflict, match="already exists"):
        Requests(engine).create(CreateSpace(name="twice", template="quick"), actor=ANN)
    runtime.broken_destroy = False
    reconcile_once(engine)
    wait_phase(engine, "twice", {"deleted"})
    assert Requests(engine).delete("twice", actor=ANN).phase == "deleted"
    create(engine, "twice", ttl="1h")


def test_different_spaces_provision_in_parallel(make_engine, templates):
    extra.install(templates, "SLOW")
    engine = make_engine()
    Requests(engine).create(CreateSpace(name="tortoise", template="slow"), actor=ANN)
    Requests(engine).create(CreateSpace(name="hare", template="quick"), actor=ANN)
    wait_phase(engine, "hare", {"ready"})
    assert phase(engine, "tortoise") == "provisioning"
    wait_phase(engine, "tortoise", {"ready"})


def test_a_pass_that_read_a_space_before_its_delete_finished_recreates_nothing(
    make_engine, tmp_path, monkeypatch
):
    """The race seen in 4 of 200 cycles, made certain: the pass read the store while the
    space was live, and the delete finished before the pass reached it."""
    from launchbay.engine import loops

    engine = make_engine()
    create(engine, "gone", ttl="1h")
    with engine.store.read() as s:
        read_before_the_delete = list(q.live_spaces(s))
    Requests(engine).delete("gone", actor=ANN)
    wait_phase(engine, "gone", {"deleted"})
    assert not (tmp_path / "runtime" / "gone").exists()
    monkeypatch.setattr(loops.q, "live_spaces", lambda s: read_before_the_delete)
    reconcile_once(engine)
    assert not (tmp_path / "runtime" / "gone").exists()
    assert phase(engine, "gone") == "deleted"
    assert "restart" not in [e.kind for e in Queries(engine).events("gone")]


def test_a_failed_health_check_says_what_the_service_answered_and_its_log_is_not_twenty_copies(
    make_engine, templates
):
    extra.install_curable(templates)  # never cured here
    engine = make_engine()
    Requests(engine).create(CreateSpace(name="sick-1", template="curable"), actor=ANN)
    wait_phase(engine, "sick-1", {"failed"})
    reason = Queries(engine).space("sick-1").reason
    first = reason.splitlines()[0]
    assert "GET /healthz: 503: database unreachable: connection refused" in first, reason
    assert reason.count("api: GET /healthz") == 1, reason
    assert "api: GET /healthz  (repeated " in reason
