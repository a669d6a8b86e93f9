"""Memory and leftovers over many create/delete cycles: a real server, a one-process
template, spaces made and deleted one after the other.

    .venv/bin/python -m bench.memory [--cycles 1000] [--early 100] [--parallel 4]

Prints the server's resident memory after `--early` cycles and after all of them (the
ratio should stay within 1.02: a server that runs for months must not grow with each
space it ever made), the growth per cycle in between, and how many deletes left the
space's runtime folder behind (counted right after each delete is reported done; it
should be 0). `--parallel` cycles run at once, each its own space, to keep the run short.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.support import EXAMPLES, ServerProcess

ONE = """\
name: one
ttl: {default: 1h, max: 2h}
services:
  app:
    process: {command: [sleep, "3600"]}
"""


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def cycle(server: ServerProcess, name: str) -> bool:
    """Create and delete one space; True if its runtime folder outlived the delete."""
    with server.client() as c:
        c.post("/api/v1/spaces", json={"name": name, "template": "one"}).raise_for_status()
        server.wait_phase(name, {"ready"})
        c.delete(f"/api/v1/spaces/{name}").raise_for_status()
        server.wait_phase(name, {"deleted"})
    return (server.data_dir / "runtime" / "process" / name).exists()


def settled_rss(server: ServerProcess) -> int:
    """RSS once the server is idle (its loops ran a pass and freed what they read)."""
    time.sleep(3)
    assert server.process is not None
    return rss_kib(server.process.pid)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cycles", type=int, default=1000)
    parser.add_argument("--early", type=int, default=100)
    parser.add_argument("--parallel", type=int, default=4)
    args = parser.parse_args()
    left = 0
    with tempfile.TemporaryDirectory(prefix="launchbay-memory-") as tmp:
        home = Path(tmp)
        shutil.copytree(EXAMPLES.parent, home / "examples")
        templates = home / "examples" / "templates"
        (templates / "one.yaml").write_text(ONE)
        (home / "home").mkdir()
        server = ServerProcess(home=home / "home", templates=templates)
        server.start()
        try:
            started = time.perf_counter()
            with ThreadPoolExecutor(max_workers=args.parallel) as pool:
                names = [f"m-{n}" for n in range(1, args.cycles + 1)]
                left += sum(pool.map(lambda name: cycle(server, name), names[: args.early]))
                early = settled_rss(server)
                left += sum(pool.map(lambda name: cycle(server, name), names[args.early :]))
            late = settled_rss(server)
            took = time.perf_counter() - started
        finally:
            server.stop()
    print(
        json.dumps(
            {
                "benchmark": "memory",
                "cycles": args.cycles,
                "rss_after_early_kib": early,
                "early_cycles": args.early,
                "rss_after_all_kib": late,
                "ratio_all_to_early": round(late / early, 4),
                "goal_ratio": 1.02,
                "goal_met": late / early <= 1.02,
                "growth_per_cycle_bytes": round(
                    (late - early) * 1024 / max(1, args.cycles - args.early)
                ),
                "runtime_folders_left_after_delete": left,
                "seconds": round(took, 1),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
