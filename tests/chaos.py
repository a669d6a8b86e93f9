"""Mixed operations against a real server that is killed with SIGKILL at random moments
and started again, then a check that the store and reality agree. Used by a test (a short
run) and by bench/durability.py (the long one)."""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx

from launchbay.store.db import Store, sqlite_url
from launchbay.store.models import Job, Space
from tests.support import ServerProcess, labelled_processes, wait_until

TRANSITIONAL = {"pending", "provisioning", "deleting"}
OPERATIONS = ("create", "create", "deploy", "sleep", "wake", "extend", "delete")


@dataclass
class ChaosReport:
    answers: Counter[str] = field(default_factory=Counter)
    kills: int = 0
    jobs: Counter[str] = field(default_factory=Counter)
    failed_without_reason: list[int] = field(default_factory=list)
    transitional: list[str] = field(default_factory=list)
    unknown_running: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    @property
    def converged(self) -> bool:
        return not (
            self.jobs["queued"]
            or self.jobs["running"]
            or self.failed_without_reason
            or self.transitional
            or self.unknown_running
            or self.missing
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "answers": dict(self.answers),
            "kills": self.kills,
            "jobs": dict(self.jobs),
            "failed_without_reason": len(self.failed_without_reason),
            "transitional": self.transitional,
            "unknown_running": self.unknown_running,
            "missing": self.missing,
        }


def operate(url: str, token: str, rng: random.Random, names: list[str]) -> str:
    """One random operation; what the server answered (or `down`)."""
    name, kind = rng.choice(names), rng.choice(OPERATIONS)
    calls = {
        "create": ("POST", "/api/v1/spaces", {"name": name, "template": "quick"}),
        "deploy": (
            "POST",
            f"/api/v1/spaces/{name}/deploy",
            {"service": "web", "version": f"v{rng.randint(1, 9)}"},
        ),
        "sleep": ("POST", f"/api/v1/spaces/{name}/sleep", None),
        "wake": ("POST", f"/api/v1/spaces/{name}/wake", None),
        "extend": ("POST", f"/api/v1/spaces/{name}/extend", {"by": "10m"}),
        "delete": ("DELETE", f"/api/v1/spaces/{name}", None),
    }
    method, path, body = calls[kind]
    try:
        response = httpx.request(
            method, url + path, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=10
        )
    except httpx.TransportError:
        return f"{kind} down"
    assert response.status_code < 500, (kind, response.status_code, response.text)
    return f"{kind} {response.status_code}"


def run(
    server: ServerProcess,
    *,
    operations: int,
    in_flight: int = 10,
    kills: int,
    seed: int,
    names: int = 8,
    settle: float = 120,
) -> ChaosReport:
    rng = random.Random(seed)
    report = ChaosReport()
    token = server.admin_token
    pool = [f"chaos-{i}" for i in range(names)]
    lock = threading.Lock()
    issued = itertools.count()
    accepted = [0]
    killed = threading.Event()

    def worker() -> None:
        # Operations go on until the kills are over and `operations` have been sent, so
        # each restart meets work however long the server takes to start on this machine.
        while (i := next(issued)) < operations or not killed.is_set():
            op_rng = random.Random(seed * 100_003 + i)
            time.sleep(op_rng.uniform(0, 0.2))
            answer = operate(server.url, token, op_rng, pool)
            with lock:
                report.answers[answer] += 1
                accepted[0] += answer.split()[1].startswith("2")

    def killer() -> None:
        try:
            for _ in range(kills):
                # Each kill lands after the server accepted new work since it last started.
                before = accepted[0]
                wait_until(lambda b=before: accepted[0] >= b + 2, timeout=60, what="work accepted")
                time.sleep(rng.uniform(0.1, 0.8))
                server.kill()
                report.kills += 1
                server.start()
        finally:
            killed.set()

    chaos = threading.Thread(target=killer)
    chaos.start()
    with ThreadPoolExecutor(max_workers=in_flight) as workers:
        for done in [workers.submit(worker) for _ in range(in_flight)]:
            done.result()
    chaos.join()
    check(server, report, settle=settle)
    return report


def check(server: ServerProcess, report: ChaosReport, *, settle: float) -> None:
    """Wait for the jobs to finish and two reconcile intervals more, then compare the
    store with the processes that run."""
    store = Store(sqlite_url(server.data_dir))
    try:

        def jobs() -> Counter[str]:
            with store.read() as s:
                return Counter(str(job.state) for job in s.query(Job))

        wait_until(
            lambda: not (c := jobs())["queued"] and not c["running"],
            timeout=settle,
            interval=0.5,
            what="every job finished",
        )
        time.sleep(2.5)  # two reconcile intervals of the test server (1 s)
        with store.read() as s:
            all_jobs = list(s.query(Job))
            spaces = list(s.query(Space))
            report.jobs = Counter(str(job.state) for job in all_jobs)
            report.failed_without_reason = [
                job.id for job in all_jobs if str(job.state) == "failed" and not job.reason
            ]
            live = {x.name: x for x in spaces if x.live_name is not None}
            report.transitional = sorted(
                f"{x.name}:{x.phase}" for x in live.values() if x.phase in TRANSITIONAL
            )
            running = labelled_processes(server.data_dir / "runtime" / "process")
            by_space: dict[str, set[str]] = {}
            for env in running.values():
                by_space.setdefault(env["LAUNCHBAY_SPACE"], set()).add(env["LAUNCHBAY_SERVICE"])
            for name, services in by_space.items():
                space = live.get(name)
                wanted = (
                    {x.name for x in space.services if x.status in ("ready", "starting")}
                    if space is not None and space.phase in ("ready", "degraded")
                    else set()
                )
                report.unknown_running += [f"{name}/{svc}" for svc in sorted(services - wanted)]
            for space in live.values():
                if space.phase != "ready":
                    continue
                have = by_space.get(space.name, set())
                report.missing += [
                    f"{space.name}/{x.name}"
                    for x in space.services
                    if x.status == "ready" and x.name not in have
                ]
    finally:
        store.close()
