import pytest

from launchbay.domain.errors import Invalid
from launchbay.domain.phases import Phase, ServiceStatus
from launchbay.domain.plan import ActionKind, Observed, find_cycle, layers, phase_for, plan_space

UP = Observed(running=True, healthy=True)
DOWN = Observed(running=False, healthy=None, detail="exited with code 1")
SICK = Observed(running=True, healthy=False, detail="GET /healthz: 500")
READY = ServiceStatus.READY


def plan(phase, observed, *, recorded=None, busy=False, exhausted=None):
    recorded = recorded or {"a": READY, "b": READY}
    return plan_space(
        phase, recorded=recorded, observed=observed, busy=busy, max_restarts_reached=exhausted or {}
    )


def test_independent_services_share_a_layer():
    assert layers({"web": ["api"], "api": ["db", "cache"], "db": [], "cache": []}) == [
        ["cache", "db"],
        ["api"],
        ["web"],
    ]


def test_cycles_are_found_as_a_path():
    assert find_cycle({"a": ["b"], "b": ["c"], "c": ["a"]}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": ["b"], "b": []}) is None
    with pytest.raises(Invalid, match="cycle"):
        layers({"a": ["a"]})


def test_a_failed_runtime_read_plans_nothing():
    assert plan(Phase.READY, None) == []
    assert plan(Phase.DELETING, None) == []


def test_a_busy_space_is_left_to_its_job():
    assert plan(Phase.PROVISIONING, {}, busy=True) == []


def test_interrupted_provisioning_and_deletes_are_resumed():
    assert [a.kind for a in plan(Phase.PROVISIONING, {})] == [ActionKind.PROVISION]
    assert [a.kind for a in plan(Phase.PENDING, {})] == [ActionKind.PROVISION]
    assert [a.kind for a in plan(Phase.DELETING, {})] == [ActionKind.DELETE]


def test_a_dead_service_of_a_ready_space_is_restarted():
    actions = plan(Phase.READY, {"a": UP, "b": DOWN})
    assert [(a.kind, a.service) for a in actions] == [(ActionKind.RESTART, "b")]
    assert actions[0].reason == "exited with code 1"


def test_a_service_that_died_too_often_is_marked_failed_not_restarted():
    actions = plan(Phase.READY, {"a": UP, "b": DOWN}, exhausted={"b": True})
    assert [(a.kind, a.service, a.status) for a in actions] == [
        (ActionKind.MARK, "b", ServiceStatus.FAILED)
    ]


def test_unhealthy_and_recovered_services_are_marked():
    assert [(a.kind, a.status) for a in plan(Phase.READY, {"a": UP, "b": SICK})] == [
        (ActionKind.MARK, ServiceStatus.UNHEALTHY)
    ]
    recorded = {"a": READY, "b": ServiceStatus.UNHEALTHY}
    assert [
        (a.service, a.status) for a in plan(Phase.DEGRADED, {"a": UP, "b": UP}, recorded=recorded)
    ] == [("b", READY)]


def test_a_healthy_ready_space_needs_nothing():
    assert plan(Phase.READY, {"a": UP, "b": UP}) == []


def test_sleeping_or_failed_spaces_with_running_services_are_stopped():
    assert [a.kind for a in plan(Phase.SLEEPING, {"a": UP, "b": DOWN})] == [ActionKind.STOP]
    assert plan(Phase.FAILED, {"a": DOWN, "b": DOWN}) == []


def test_phase_follows_service_statuses():
    assert phase_for([READY, READY]) is Phase.READY
    assert phase_for([READY, ServiceStatus.UNHEALTHY]) is Phase.DEGRADED
