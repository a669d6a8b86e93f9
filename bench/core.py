"""Core benchmark: provisioning parallelism and CLI start-up, as ratios against baselines
measured in the same run (these machines are shared and noisy).

    .venv/bin/python -m bench.core [--services 8] [--delay 2] [--runs 10]

1. Time from create to `ready` for a template of N independent services that each take
   T seconds to become healthy, against the critical path: the same N commands started
   directly, at once, until every one answers (polled as often as the template's health
   check). A ratio near 1 means the services really start in parallel and Launchbay adds
   little on top; against T alone (also printed) it includes the services' own start-up.
2. Start-up of `bay --version` and `bay space list -o json` (against a live server), against
   `kubectl version --client` (the test set-up puts a static kubectl beside helm in
   .venv/bin; goals: ratios at most 1.5 and 3) and a bare `python -c pass`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from tests.support import ServerProcess, free_port, wait_until


def parallel_template(services: int, delay: float) -> str:
    lines = ["name: parallel", "ttl: {default: 1h, max: 2h}", "services:"]
    for i in range(services):
        lines += [
            f"  s{i}:",
            "    health: {http: /, interval: 50ms, timeout: 60s}",
            "    process:",
            f'      command: [sh, -c, "sleep {delay}; exec {sys.executable} -m http.server '
            f'${{services.s{i}.port}} --bind 127.0.0.1"]',
        ]
    return "\n".join(lines) + "\n"


def time_to_ready(server: ServerProcess, name: str) -> float:
    with server.client() as c:
        start = time.perf_counter()
        c.post("/api/v1/spaces", json={"name": name, "template": "parallel"}).raise_for_status()
        wait_until(
            lambda: c.get(f"/api/v1/spaces/{name}").json()["phase"] in ("ready", "failed"),
            timeout=120,
            interval=0.02,
            what="ready",
        )
        elapsed = time.perf_counter() - start
        assert c.get(f"/api/v1/spaces/{name}").json()["phase"] == "ready"
        c.delete(f"/api/v1/spaces/{name}")
    return elapsed


def direct_start(services: int, delay: float) -> float:
    """The same commands without Launchbay: started at once, polled every 50 ms until all
    answer; the critical path on this machine, now."""
    ports = [free_port() for _ in range(services)]
    start = time.perf_counter()
    processes = [
        subprocess.Popen(
            [
                "sh",
                "-c",
                f"sleep {delay}; exec {sys.executable} -m http.server {port} --bind 127.0.0.1",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for port in ports
    ]
    try:
        waiting = set(ports)
        while waiting:
            for port in list(waiting):
                with contextlib.suppress(httpx.TransportError):
                    httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
                    waiting.discard(port)
            if waiting:
                time.sleep(0.05)
        return time.perf_counter() - start
    finally:
        for process in processes:
            process.kill()
            process.wait()


def median_seconds(command: list[str], *, runs: int, env: dict[str, str] | None = None) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, env=env, capture_output=True, check=True)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--services", type=int, default=8)
    parser.add_argument("--delay", type=float, default=2.0)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="launchbay-bench-") as tmp:
        home = Path(tmp)
        templates = home / "templates"
        templates.mkdir()
        (templates / "parallel.yaml").write_text(parallel_template(args.services, args.delay))
        server = ServerProcess(
            home=home, templates=templates, extra_args=["--reconcile-interval", "30"]
        )
        server.start()
        try:
            rounds = [time_to_ready(server, f"bench-{i}") for i in range(3)]
            ready = statistics.median(rounds)
            direct = statistics.median([direct_start(args.services, args.delay) for _ in range(3)])
            env = server.env | {"BAY_SERVER": server.url, "BAY_TOKEN": server.admin_token}
            bay = [str(Path(sys.executable).parent / "bay")]
            python = median_seconds([sys.executable, "-c", "pass"], runs=args.runs)
            version = median_seconds([*bay, "--version"], runs=args.runs, env=env)
            listing = median_seconds([*bay, "space", "list", "-o", "json"], runs=args.runs, env=env)
            kubectl_path = shutil.which("kubectl", path=str(Path(sys.executable).parent))
            kubectl_path = kubectl_path or shutil.which("kubectl")
            kubectl = (
                median_seconds([kubectl_path, "version", "--client"], runs=args.runs)
                if kubectl_path
                else None
            )
        finally:
            server.stop()

    result = {
        "benchmark": "core",
        "provisioning": {
            "services": args.services,
            "health_delay_s": args.delay,
            "time_to_ready_s": round(ready, 3),
            "rounds_s": [round(r, 3) for r in rounds],
            "direct_start_s": round(direct, 3),
            "ratio_to_critical_path": round(ready / direct, 3),
            "ratio_to_delay": round(ready / args.delay, 3),
        },
        "cli_startup": {
            "python_bare_s": round(python, 4),
            "bay_version_s": round(version, 4),
            "bay_space_list_json_s": round(listing, 4),
            "bay_version_ratio_to_python": round(version / python, 2),
            "bay_space_list_ratio_to_python": round(listing / python, 2),
            "kubectl_version_client_s": round(kubectl, 4) if kubectl else None,
            "bay_version_ratio_to_kubectl": round(version / kubectl, 2) if kubectl else None,
            "bay_space_list_ratio_to_kubectl": round(listing / kubectl, 2) if kubectl else None,
            "goals": {"bay_version_ratio_to_kubectl": 1.5, "bay_space_list_ratio_to_kubectl": 3},
        },
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
