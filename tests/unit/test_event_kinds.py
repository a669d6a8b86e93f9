"""Every line of a timeline has a kind from one enum: the kinds made from a phase, a
service's status or a deploy's result exist for every value those can take."""

from __future__ import annotations

import pytest

from launchbay.domain.events import EventKind
from launchbay.domain.phases import DeployResult, Phase, ServiceStatus


@pytest.mark.parametrize("phase", list(Phase))
def test_every_phase_has_its_event_kind(phase):
    assert EventKind.of_phase(phase) == phase.value


@pytest.mark.parametrize("status", list(ServiceStatus))
def test_every_service_status_has_its_event_kind(status):
    assert EventKind.of_service(status) == f"service-{status.value}"


@pytest.mark.parametrize("result", list(DeployResult))
def test_every_deploy_result_has_its_event_kind(result):
    assert EventKind.of_deploy(result) == f"deploy-{result.value}"


def test_the_actions_asked_for_again_have_their_event_kinds():
    assert {EventKind.requested("retry"), EventKind.requested("recreate")} == {
        EventKind.RETRY_REQUESTED,
        EventKind.RECREATE_REQUESTED,
    }
