"""Create-or-update, per-service deploys with history, and `bay ci up/down`, on real processes."""

from __future__ import annotations

import httpx
import pytest

from tests.integration import pipeline_support
from tests.support import labelled_processes, wait_until


@pytest.fixture
def templates(templates):
    pipeline_support.install(templates)
    return templates


def pids_by_service(server, space: str) -> dict[str, set[int]]:
    found: dict[str, set[int]] = {}
    for pid, env in labelled_processes(server.data_dir / "runtime" / "process", space).items():
        found.setdefault(env["LAUNCHBAY_SERVICE"], set()).add(pid)
    return found


def applied(server, name: str, generation: int) -> dict:
    return wait_until(
        lambda: (s := server.space(name))["observed_generation"] >= generation and s,
        timeout=60,
        interval=0.1,
        what=f"{name} at generation {generation}",
    )


def put(c: httpx.Client, name: str, **body) -> httpx.Response:
    return c.put(f"/api/v1/spaces/{name}", json={"template": "versioned", **body})


def app_says(space: dict) -> str:
    app = next(s for s in space["services"] if s["name"] == "app")
    return httpx.get(app["endpoints"]["home"]).text


def test_put_creates_then_changes_only_what_differs_idempotently(server):
    with server.client() as c:
        created = put(c, "pr-1", source="test pipeline")
        assert created.status_code == 201
        space = applied(server, "pr-1", created.json()["generation"])
        assert space["phase"] == "ready" and app_says(space) == "v1 v1"
        before = pids_by_service(server, "pr-1")

        again = put(c, "pr-1")
        assert (
            again.status_code == 200 and again.json()["generation"] == created.json()["generation"]
        )
        assert c.get("/api/v1/spaces/pr-1/deploys").json() == []

        updated = put(c, "pr-1", set={"app.version": "v2"}, source="test pipeline")
        assert updated.status_code == 200
        space = applied(server, "pr-1", updated.json()["generation"])
        assert space["phase"] == "ready" and app_says(space) == "v2 v2"
        after = pids_by_service(server, "pr-1")
        assert after["front"] == before["front"]  # untouched
        assert after["app"] != before["app"]
        (deploy,) = c.get("/api/v1/spaces/pr-1/deploys").json()
        assert (
            deploy["service"],
            deploy["from_version"],
            deploy["to_version"],
            deploy["result"],
        ) == ("app", "v1", "v2", "succeeded")
        assert (
            deploy["source"] == "test pipeline"
            and deploy["actor"] == "admin"
            and deploy["duration_s"] is not None
        )

        back = put(c, "pr-1")  # PUT is the whole wanted state: no override means the default again
        space = applied(server, "pr-1", back.json()["generation"])
        assert app_says(space) == "v1 v1"


def test_put_refuses_another_template_and_bad_input_without_changes(server):
    with server.client() as c:
        put(c, "pr-2").raise_for_status()
        other = c.put("/api/v1/spaces/pr-2", json={"template": "demo"})
        assert (
            other.status_code == 409
            and "runs template 'versioned', not 'demo'" in other.json()["detail"]
        )
        unknown = put(c, "pr-2", set={"db.version": "x"})
        assert unknown.status_code == 422 and "unknown service 'db'" in unknown.json()["detail"]
        assert c.get("/api/v1/spaces/pr-2").json()["generation"] == 1


def test_deploy_waits_and_a_missing_version_fails_and_rolls_back(server):
    with server.client() as c:
        put(c, "pr-3").raise_for_status()
        server.wait_phase("pr-3", {"ready"})
        good = c.post(
            "/api/v1/spaces/pr-3/deploy?wait=true", json={"service": "app", "version": "v2"}
        )
        assert good.status_code == 200 and good.json()["result"] == "succeeded"
        bad = c.post(
            "/api/v1/spaces/pr-3/deploy?wait=true", json={"service": "app", "version": "v9"}
        )
        assert bad.status_code == 200
        result = bad.json()
        assert result["result"] == "failed"
        assert "exited with code 2" in result["detail"] and "app-v9.py" in result["detail"]
        assert "rolled back: app runs v2 again" in result["detail"]
        space = server.wait_phase("pr-3", {"ready"})
        assert app_says(space) == "v2 v2"  # the previous version is left running
        assert space["overrides"]["app"]["version"] == "v2"
        missing = c.post("/api/v1/spaces/pr-3/deploy", json={"service": "db", "version": "x"})
        assert missing.status_code == 422 and "has no service 'db'" in missing.json()["detail"]
        history = server.bay("space", "history", "pr-3")
        assert history.returncode == 0 and "v9" in history.stdout and "failed" in history.stdout


def test_bay_ci_up_prints_endpoints_and_writes_github_files(server, tmp_path):
    output, summary = tmp_path / "output", tmp_path / "summary"
    env = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_OUTPUT": str(output),
        "GITHUB_STEP_SUMMARY": str(summary),
        "GITHUB_REPOSITORY": "acme/app",
        "GITHUB_RUN_ID": "42",
    }
    result = server.bay(
        "ci",
        "up",
        "pr-4",
        "--template",
        "versioned",
        "--set",
        "app.version=v2",
        "--ttl",
        "2h",
        extra_env=env,
    )
    assert result.returncode == 0, result.stderr
    assert "app\tv2\thome\thttp://127.0.0.1:" in result.stdout
    written = output.read_text()
    assert (
        "space=pr-4\n" in written
        and "phase=ready\n" in written
        and "app_home_url=http://127.0.0.1:" in written
    )
    assert "### Launchbay space `pr-4` is ready" in summary.read_text()
    assert "| app | `v2` | [home](http://127.0.0.1:" in summary.read_text()
    again = server.bay(
        "ci", "up", "pr-4", "--template", "versioned", "--set", "app.version=main", extra_env=env
    )
    assert again.returncode == 0, again.stderr
    assert "app\tmain\thome" in again.stdout
    deploys = server.get_json("/api/v1/spaces/pr-4/deploys")
    assert deploys[0]["source"] == "github-actions acme/app run 42"


def test_bay_ci_up_fails_with_the_reason_and_log_tail(server, tmp_path):
    summary = tmp_path / "summary"
    result = server.bay(
        "ci",
        "up",
        "pr-5",
        "--template",
        "versioned",
        "--set",
        "app.version=v9",
        "--timeout",
        "2m",
        extra_env={"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)},
    )
    assert result.returncode == 6
    assert "service 'app' failed: service 'app': exited with code 2" in result.stderr
    assert "--- last lines of app's log ---" in result.stderr and "app-v9.py" in result.stderr
    assert "is failed" in summary.read_text()
    # and a later push with a good version brings the space up
    fixed = server.bay("ci", "up", "pr-5", "--template", "versioned", "--set", "app.version=v2")
    assert fixed.returncode == 0, fixed.stderr
    assert server.space("pr-5")["phase"] == "ready"


def test_bay_ci_down_deletes_and_is_fine_when_nothing_is_there(server):
    assert server.bay("ci", "up", "pr-6", "--template", "versioned").returncode == 0
    down = server.bay("ci", "down", "pr-6")
    assert down.returncode == 0 and "pr-6 deleted" in down.stdout
    assert server.space("pr-6")["phase"] == "deleted"
    again = server.bay("ci", "down", "never-existed")
    assert again.returncode == 0 and "nothing to delete" in again.stdout
