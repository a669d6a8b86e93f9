"""Compose benchmark: time from create to `ready` for each Compose file under
tests/material/compose run through a template's `compose: {file: ...}`, against plain
`docker compose up --wait --build` of the same, unmodified file in the same run (these
machines are shared and noisy). Launchbay's overhead is the ratio, per file; the goal is
at most 1.05 on each.

    .venv/bin/python -m bench.compose [--rounds 3]

Rounds alternate (Launchbay, then plain) so that a slow moment hits both. Both build what
the file builds (Launchbay builds on a space's first start, so that a space runs the
source as it is). Needs a Docker Engine and Compose v2 (scripts/test.sh sets both up).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from tests.support import MATERIAL, ServerProcess, tag_material_images, wait_until

FILES = {
    "shop": "shop/docker-compose.yml",
    "platform": "platform/compose.yaml",
    "ports": "ports/compose.yaml",
}


def launchbay_round(server: ServerProcess, template: str, name: str) -> float:
    """From the moment the create is sent to the moment the server recorded the space ready
    (its `ready` event, on this machine's clock). The client looks only every quarter
    second: polling faster took CPU from Compose on two cores and slowed what it measured."""
    with server.client() as c:
        start = datetime.now(UTC)
        c.post(
            "/api/v1/spaces", json={"name": name, "template": template, "runtime": "compose"}
        ).raise_for_status()
        wait_until(
            lambda: c.get(f"/api/v1/spaces/{name}").json()["phase"] in ("ready", "failed"),
            timeout=300,
            interval=0.25,
            what="ready",
        )
        space = c.get(f"/api/v1/spaces/{name}").json()
        assert space["phase"] == "ready", space["reason"]
        events = c.get(f"/api/v1/spaces/{name}/events").json()
    ready_at = datetime.fromisoformat(next(e["at"] for e in events if e["kind"] == "ready"))
    assert server.bay("space", "delete", name, "--wait").returncode == 0
    return (ready_at - start).total_seconds()


def plain_round(compose_file: Path, project: str) -> float:
    command = ["docker", "compose", "--project-name", project, "--file", str(compose_file)]
    start = time.perf_counter()
    subprocess.run(
        [*command, "up", "--detach", "--wait", "--build"], check=True, capture_output=True
    )
    elapsed = time.perf_counter() - start
    subprocess.run([*command, "down", "--volumes"], check=True, capture_output=True)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    tag_material_images()
    results = []
    with tempfile.TemporaryDirectory(prefix="launchbay-bench-") as tmp:
        home = Path(tmp)
        shutil.copytree(MATERIAL, home / "material")
        templates = home / "templates"
        templates.mkdir()
        for name, file in FILES.items():
            (templates / f"{name}.yaml").write_text(
                f"name: {name}\nttl: {{default: 1h, max: 2h}}\n"
                f"compose: {{file: ../material/compose/{file}}}\n"
            )
        server = ServerProcess(home=home / "home", templates=templates)
        server.home.mkdir()
        server.start()
        try:
            for name, file in FILES.items():
                compose_file = home / "material" / "compose" / file
                launchbay_round(server, name, f"{name}-warm")  # images built once
                plain_round(compose_file, f"plain-{name}-warm")
                ours, theirs = [], []
                for i in range(args.rounds):
                    ours.append(launchbay_round(server, name, f"{name}-{i}"))
                    theirs.append(plain_round(compose_file, f"plain-{name}-{i}"))
                mine, plain = statistics.median(ours), statistics.median(theirs)
                results.append(
                    {
                        "file": f"tests/material/compose/{file}",
                        "launchbay_create_to_ready_s": round(mine, 3),
                        "plain_compose_up_wait_s": round(plain, 3),
                        "rounds_launchbay_s": [round(x, 3) for x in ours],
                        "rounds_plain_s": [round(x, 3) for x in theirs],
                        "overhead_ratio": round(mine / plain, 3),
                    }
                )
        finally:
            server.stop()
    print(
        json.dumps(
            {
                "benchmark": "compose",
                "goal": "overhead_ratio <= 1.05 for each file",
                "files": results,
                "worst_ratio": max(r["overhead_ratio"] for r in results),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
