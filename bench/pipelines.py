"""Pipeline benchmark: webhook-to-ready for a one-service redeploy (a PR's `synchronize`)
against a full create of the same space (its `opened`), on the demo template.

    .venv/bin/python -m bench.pipelines [--rounds 3]

A redeploy must touch only the changed service, so it should take a fraction of a create
(which starts kv, then api, then web). The ratio is what to watch; the benchmark also
checks that the other services' processes were not restarted.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from launchbay.domain.webhooks import sign
from tests.support import EXAMPLES, ServerProcess, labelled_processes, wait_until

SECRET = "bench-webhook-secret-0123456789"
CONFIG = """\
github:
  secret_env: LAUNCHBAY_BENCH_GITHUB_SECRET
  repositories:
    acme/api: {template: demo, service: api, version: "sha-${short_sha}"}
"""


def deliver(server: ServerProcess, action: str, number: int, sha: str, at: datetime) -> None:
    payload = {
        "action": action,
        "number": number,
        "pull_request": {
            "number": number,
            "updated_at": at.isoformat(),
            "head": {"sha": sha, "repo": {"full_name": "acme/api"}},
        },
        "repository": {"full_name": "acme/api", "default_branch": "main"},
    }
    body = json.dumps(payload).encode()
    response = httpx.post(
        f"{server.url}/api/v1/webhooks/github",
        content=body,
        headers={
            "X-GitHub-Event": "pull_request",
            "X-GitHub-Delivery": str(uuid.uuid4()),
            "X-Hub-Signature-256": sign(SECRET.encode(), body),
        },
    )
    assert response.status_code == 202, response.text


def until_applied(server: ServerProcess, name: str, version: str) -> None:
    def done() -> bool:
        with server.client() as c:
            r = c.get(f"/api/v1/spaces/{name}")
        if r.status_code != 200:
            return False
        s = r.json()
        api = next(x for x in s["services"] if x["name"] == "api")
        return (
            s["phase"] == "ready"
            and s["observed_generation"] >= s["generation"]
            and api["version"] == version
        )

    wait_until(done, timeout=120, interval=0.02, what=f"{name} at {version}")


def pids(server: ServerProcess, space: str) -> dict[str, set[int]]:
    found: dict[str, set[int]] = {}
    for pid, env in labelled_processes(server.data_dir / "runtime" / "process", space).items():
        found.setdefault(env["LAUNCHBAY_SERVICE"], set()).add(pid)
    return found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    creates, redeploys, untouched = [], [], True
    with tempfile.TemporaryDirectory(prefix="launchbay-bench-") as tmp:
        home = Path(tmp)
        shutil.copytree(EXAMPLES.parent, home / "examples")
        (home / "config.yaml").write_text(CONFIG)
        server = ServerProcess(
            home=home,
            templates=home / "examples" / "templates",
            extra_args=["--config", str(home / "config.yaml")],
            extra_env={"LAUNCHBAY_BENCH_GITHUB_SECRET": SECRET},
        )
        server.start()
        try:
            t0 = datetime.now(UTC)
            for n in range(1, args.rounds + 1):
                name = f"pr-{n}-api"
                start = time.perf_counter()
                deliver(server, "opened", n, "a" * 40, t0)
                until_applied(server, name, "sha-aaaaaaa")
                creates.append(time.perf_counter() - start)
                before = pids(server, name)
                start = time.perf_counter()
                deliver(server, "synchronize", n, "b" * 40, t0 + timedelta(minutes=1))
                until_applied(server, name, "sha-bbbbbbb")
                redeploys.append(time.perf_counter() - start)
                after = pids(server, name)
                untouched &= (
                    before["kv"] == after["kv"]
                    and before["web"] == after["web"]
                    and before["api"] != after["api"]
                )
        finally:
            server.stop()
    create, redeploy = statistics.median(creates), statistics.median(redeploys)
    print(
        json.dumps(
            {
                "benchmark": "pipelines",
                "template": "demo (kv -> api -> web)",
                "webhook_to_ready_full_create_s": round(create, 3),
                "webhook_to_ready_one_service_redeploy_s": round(redeploy, 3),
                "rounds_create_s": [round(x, 3) for x in creates],
                "rounds_redeploy_s": [round(x, 3) for x in redeploys],
                "ratio_redeploy_to_create": round(redeploy / create, 3),
                "other_services_untouched": untouched,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
