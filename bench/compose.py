"""Compose benchmark: time from create to `ready` for the demo template on the compose
runtime, against plain `docker compose up --wait` of the same generated Compose file
followed by the same health checks from the host. Launchbay's overhead is the ratio.

    .venv/bin/python -m bench.compose [--rounds 3]

Needs a Docker Engine and Compose v2 (scripts/test.sh sets both up).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import yaml

from tests.support import BUSYBOX_IMAGE, EXAMPLES, ServerProcess, build_busybox_image, wait_until


def launchbay_round(server: ServerProcess, name: str) -> tuple[float, Path]:
    with server.client() as c:
        start = time.perf_counter()
        c.post(
            "/api/v1/spaces",
            json={
                "name": name,
                "template": "demo",
                "runtime": "compose",
                "params": {"base_image": BUSYBOX_IMAGE},
            },
        ).raise_for_status()
        wait_until(
            lambda: c.get(f"/api/v1/spaces/{name}").json()["phase"] in ("ready", "failed"),
            timeout=300,
            interval=0.02,
            what="ready",
        )
        elapsed = time.perf_counter() - start
        assert c.get(f"/api/v1/spaces/{name}").json()["phase"] == "ready"
    generated = server.data_dir / "runtime" / "compose" / name / "compose.yaml"
    copy = server.home / f"{name}.compose.yaml"
    shutil.copy(generated, copy)
    return elapsed, copy


def plain_round(compose_file: Path, project: str) -> float:
    """`docker compose up --wait`, then the template's health checks from the host."""
    document = yaml.safe_load(compose_file.read_text())
    document["name"] = project
    urls = []
    for service in document["services"].values():
        host, port, _ = service["ports"][0].split(":")
        urls.append(f"http://{host}:{port}/healthz")
    plain = compose_file.with_name(f"{project}.yaml")
    plain.write_text(yaml.safe_dump(document))
    start = time.perf_counter()
    subprocess.run(
        ["docker", "compose", "-f", str(plain), "up", "--detach", "--wait"],
        check=True,
        capture_output=True,
    )
    wait_until(lambda: all(_ok(url) for url in urls), timeout=120, interval=0.02, what="healthy")
    elapsed = time.perf_counter() - start
    subprocess.run(
        ["docker", "compose", "-f", str(plain), "down", "--volumes"],
        check=True,
        capture_output=True,
    )
    return elapsed


def _ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code < 400
    except httpx.TransportError:
        return False


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    build_busybox_image()
    ours, theirs = [], []
    with tempfile.TemporaryDirectory(prefix="launchbay-bench-") as tmp:
        home = Path(tmp)
        shutil.copytree(EXAMPLES.parent, home / "examples")
        server = ServerProcess(home=home, templates=home / "examples" / "templates")
        server.start()
        try:
            launchbay_round(server, "warm-up")  # builds the demo image once
            server.bay("space", "delete", "warm-up", "--wait")
            for i in range(args.rounds):
                name = f"bench-{i}"
                elapsed, generated = launchbay_round(server, name)
                ours.append(elapsed)
                assert server.bay("space", "delete", name, "--wait").returncode == 0
                theirs.append(plain_round(generated, f"bench-plain-{i}"))
        finally:
            server.stop()
    mine, plain = statistics.median(ours), statistics.median(theirs)
    print(
        json.dumps(
            {
                "benchmark": "compose",
                "template": "demo (kv -> api -> web, busybox httpd)",
                "launchbay_create_to_ready_s": round(mine, 3),
                "plain_compose_up_wait_then_health_s": round(plain, 3),
                "rounds_launchbay_s": [round(x, 3) for x in ours],
                "rounds_plain_s": [round(x, 3) for x in theirs],
                "overhead_ratio": round(mine / plain, 3),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
