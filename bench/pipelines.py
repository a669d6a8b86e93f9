"""Pipeline benchmark: webhook-to-ready for a one-service redeploy (a PR's `synchronize`)
against a full create of the same space (its `opened`), on the demo template; and the
time GitHub waits for its answer (the ack) when a burst of deliveries comes at once,
against the same deliveries one at a time.

    .venv/bin/python -m bench.pipelines [--rounds 3] [--burst 50]

A redeploy must touch only the changed service, so it should take a fraction of a create
(which starts kv, then api, then web). The ratio is what to watch; the benchmark also
checks that the other services' processes were not restarted.
"""

from __future__ import annotations

import argparse
import asyncio
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
    acme/tiny: {template: tiny, service: app}
"""
# The burst's spaces: one idle process each, so that the machine answers the webhooks
# rather than starting a hundred demo stacks.
TINY = """\
name: tiny
ttl: {default: 1h, max: 2h}
services:
  app:
    process: {command: [sleep, "3600"]}
"""


def delivery(
    action: str, number: int, sha: str, at: datetime, *, repo: str = "acme/api"
) -> tuple[bytes, dict[str, str]]:
    """A pull_request delivery as GitHub sends it: the body and its headers."""
    payload = {
        "action": action,
        "number": number,
        "pull_request": {
            "number": number,
            "updated_at": at.isoformat(),
            "head": {"sha": sha, "repo": {"full_name": repo}},
        },
        "repository": {"full_name": repo, "default_branch": "main"},
    }
    body = json.dumps(payload).encode()
    return body, {
        "Content-Type": "application/json",
        "X-GitHub-Event": "pull_request",
        "X-GitHub-Delivery": str(uuid.uuid4()),
        "X-Hub-Signature-256": sign(SECRET.encode(), body),
    }


def deliver(server: ServerProcess, action: str, number: int, sha: str, at: datetime) -> None:
    body, headers = delivery(action, number, sha, at)
    response = httpx.post(
        f"{server.url}/api/v1/webhooks/github", content=body, headers=headers, timeout=30
    )
    assert response.status_code == 202, response.text


def quiet(server: ServerProcess) -> None:
    """Every delivery's work done and every space settled."""

    def settled() -> bool:
        with server.client() as c:
            owed = [d for d in c.get("/api/v1/webhooks/github/deliveries?limit=1000").json()]
            spaces = c.get("/api/v1/spaces?limit=500").json()["items"]
        return all(d["status"] != "accepted" for d in owed) and all(
            s["phase"] in ("ready", "failed") for s in spaces
        )

    wait_until(settled, timeout=300, interval=0.5, what="the server settled")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def acks(server: ServerProcess, burst: int, first: int, at: datetime) -> dict[str, object]:
    """Ack latency of `burst` deliveries one at a time, then of `burst` more sent at once
    (each a new PR: recorded, answered, its space made afterwards by the workers). Each
    comes on a new connection, as GitHub's do. The client writes each request's bytes and
    reads the status line on a bare asyncio connection: an HTTP client library's own work
    (httpx spent about 5 ms of CPU a request) queued the answers in the client, on the
    same two cores, and was measured as the server's latency."""
    port = int(server.url.rsplit(":", 1)[1])

    async def send(number: int, sha: str) -> float:
        body, headers = delivery("opened", number, sha, at, repo="acme/tiny")
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        request = (
            f"POST /api/v1/webhooks/github HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n{head}\r\n"
        ).encode() + body
        start = time.perf_counter()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request)
        status = await reader.readline()
        took = time.perf_counter() - start
        writer.close()
        await writer.wait_closed()
        assert status.split()[1] == b"202", status
        return took

    async def one_at_a_time() -> list[float]:
        return [await send(first + i, "c" * 40) for i in range(burst)]

    async def all_at_once() -> list[float]:
        return list(
            await asyncio.gather(*(send(first + burst + i, "d" * 40) for i in range(burst)))
        )

    alone = asyncio.run(one_at_a_time())
    quiet(server)  # the burst starts on a machine as calm as the one-at-a-time run did
    together = asyncio.run(all_at_once())
    p99_alone, p99_burst = percentile(alone, 0.99), percentile(together, 0.99)
    return {
        "ack_one_at_a_time_p50_s": round(percentile(alone, 0.5), 4),
        "ack_one_at_a_time_p99_s": round(p99_alone, 4),
        f"ack_burst_of_{burst}_p50_s": round(percentile(together, 0.5), 4),
        f"ack_burst_of_{burst}_p99_s": round(p99_burst, 4),
        "ratio_burst_p99_to_one_at_a_time_p99": round(p99_burst / p99_alone, 2),
        "ack_goal_p99_s": 0.2,
        "ack_goal_met": p99_burst <= 0.2,
    }


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
    parser.add_argument("--burst", type=int, default=50)
    args = parser.parse_args()
    creates, redeploys, untouched = [], [], True
    with tempfile.TemporaryDirectory(prefix="launchbay-bench-") as tmp:
        home = Path(tmp)
        shutil.copytree(EXAMPLES.parent, home / "examples")
        (home / "config.yaml").write_text(CONFIG)
        (home / "examples" / "templates" / "tiny.yaml").write_text(TINY)
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
            burst = acks(server, args.burst, 1000, t0)
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
                **burst,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
