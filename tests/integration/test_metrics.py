"""/metrics in Prometheus' text format, from a real server: what the engine did and what
the store holds."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration import templates as extra


@pytest.fixture
def templates(templates):
    extra.install(templates, "QUICK")
    return templates


def samples(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = httpx.get(f"{url}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def test_metrics_count_jobs_time_readiness_and_report_state(server):
    assert server.bay("space", "create", "seen", "--template", "quick", "--wait").returncode == 0
    space = server.space("seen")
    assert space["ready_seconds"] > 0 and space["services"][0]["ready_seconds"] > 0
    assert ", ready in " in server.bay("space", "show", "seen").stdout
    got = samples(server.url)
    assert got[("launchbay_jobs_finished_total", (("kind", "provision"), ("outcome", "done")))] == 1
    assert got[("launchbay_space_ready_seconds_count", (("template", "quick"),))] == 1
    assert (
        got[("launchbay_service_ready_seconds_count", (("service", "web"), ("template", "quick")))]
        == 1
    )
    assert got[("launchbay_space_ready_seconds_sum", (("template", "quick"),))] > 0
    assert got[("launchbay_runtime_available", (("runtime", "process"),))] == 1
    assert got[("launchbay_spaces", (("phase", "ready"),))] == 1
    assert got[("launchbay_spaces_past_expiry", ())] == 0
    assert got[("launchbay_log_follows", ())] == 0
    assert got[("launchbay_loop_pass_seconds_count", (("loop", "reconciler"),))] >= 1
    server.bay("space", "delete", "seen", "--wait")
    got = samples(server.url)
    assert got[("launchbay_jobs_finished_total", (("kind", "delete"), ("outcome", "done")))] == 1
    assert ("launchbay_spaces", (("phase", "ready"),)) not in got
