"""Portal benchmark: the dashboard page and its live-update fragment with 5,000 spaces in the
store, against the same with 50 (paging must keep the ratio near 1).

    .venv/bin/python -m bench.portal [--requests 40]

Spaces are written straight into the store as sleeping three-service spaces (the engine's
loops are slowed down so they do not interfere), then one server serves both sizes.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from launchbay.store.db import Store, sqlite_url
from launchbay.store.models import ServiceState, Space
from tests.support import EXAMPLES, ServerProcess


def add_spaces(data_dir: Path, start: int, count: int) -> None:
    store = Store(sqlite_url(data_dir))
    now = datetime.now(UTC)
    with store.write() as s:
        for i in range(start, start + count):
            name = f"bench-{i:05d}"
            space = Space(
                name=name,
                live_name=name,
                template="demo",
                runtime="process",
                owner="admin",
                params={},
                overrides={},
                phase="sleeping",
                reason="",
                created_at=now,
                updated_at=now,
                expires_at=now + timedelta(days=2),
                generation=1,
                observed_generation=1,
            )
            space.services = [
                ServiceState(
                    name=svc,
                    position=n,
                    status="stopped",
                    version="main",
                    detail="asleep",
                    restarts=0,
                    endpoints={"web": f"http://127.0.0.1:{20000 + n}/"},
                    updated_at=now,
                )
                for n, svc in enumerate(("kv", "api", "web"))
            ]
            s.add(space)
    store.close()


def timed(client: httpx.Client, path: str, requests: int) -> float:
    samples = []
    for _ in range(requests):
        start = time.perf_counter()
        response = client.get(path)
        samples.append(time.perf_counter() - start)
        assert response.status_code == 200, response.status_code
    return statistics.median(samples)


def measure(server: ServerProcess, requests: int) -> dict[str, float]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        page = client.get("/signin")
        csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
        assert csrf
        client.post("/signin", data={"token": server.admin_token, "csrf": csrf.group(1)})
        return {
            "dashboard_s": timed(client, "/", requests),
            "fragment_s": timed(client, "/fragments/spaces", requests),
            "fragment_filtered_s": timed(
                client, "/fragments/spaces?q=bench-00&sort=name", requests
            ),
        }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--small", type=int, default=50)
    parser.add_argument("--large", type=int, default=5000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="launchbay-bench-") as tmp:
        home = Path(tmp)
        shutil.copytree(EXAMPLES.parent, home / "examples")
        server = ServerProcess(
            home=home,
            templates=home / "examples" / "templates",
            extra_args=["--reconcile-interval", "3600", "--sweep-interval", "60"],
        )
        server.start()
        try:
            add_spaces(server.data_dir, 0, args.small)
            small = measure(server, args.requests)
            add_spaces(server.data_dir, args.small, args.large - args.small)
            large = measure(server, args.requests)
        finally:
            server.stop()
    print(
        json.dumps(
            {
                "benchmark": "portal",
                "spaces": {"small": args.small, "large": args.large},
                "median_s": {
                    "small": {k: round(v, 4) for k, v in small.items()},
                    "large": {k: round(v, 4) for k, v in large.items()},
                },
                "ratio_large_to_small": {k: round(large[k] / small[k], 2) for k in small},
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
