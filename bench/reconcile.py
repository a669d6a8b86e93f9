"""The cost of one reconcile pass at 10, 100 and 1,000 live spaces: it should grow with
the number of spaces and no faster (a flat cost per space). Also the notifier's pass
(warnings due, notices owed), which runs every second on the leader: its cost against
the reconcile pass's at each size.

    .venv/bin/python -m bench.reconcile [--sizes 10,100,1000] [--passes 5]

In-process: the real engine, store (SQLite) and process runtime, with one real process per
space (`sleep`). Prints the median pass time at each size, the time per space, and the
ratio of the time per space at each size to that at the smallest (goal: about 1).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from launchbay.domain.auth import Actor
from launchbay.engine.assembly import Launchbay
from launchbay.engine.catalog import TemplateCatalog
from launchbay.engine.engine import Engine, EngineSettings
from launchbay.engine.loops import reconcile_once
from launchbay.engine.requests import CreateSpace, Requests
from launchbay.runtimes.process import ProcessRuntime
from launchbay.store import queries as q
from launchbay.store.db import Store, sqlite_url
from tests.support import wait_until

TEMPLATE = """\
name: idle
ttl: {default: 1h, max: 2h}
services:
  idle:
    process:
      command: [sleep, "3600"]
"""


def ready_count(engine: Engine) -> int:
    with engine.store.read() as s:
        return q.count_by_phase(s).get("ready", 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="10,100,1000")
    parser.add_argument("--passes", type=int, default=5)
    args = parser.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="launchbay-reconcile-") as tmp:
        root = Path(tmp)
        (root / "templates").mkdir()
        (root / "templates" / "idle.yaml").write_text(TEMPLATE)
        store = Store(sqlite_url(root))
        store.migrate()
        runtime = ProcessRuntime(root / "runtime", stop_grace=1.0)
        engine = Engine(
            store=store,
            runtimes={"process": runtime},
            catalog=TemplateCatalog(root / "templates"),
            settings=EngineSettings(workers=32),
        )
        bay = Launchbay.of(engine)
        engine.start()
        results = []
        made = 0
        try:
            for size in sizes:
                for i in range(made, size):
                    Requests(engine).create(
                        CreateSpace(name=f"idle-{i}", template="idle"), actor=Actor("b")
                    )
                made = size
                wait_until(
                    lambda size=size: ready_count(engine) >= size,
                    timeout=1200,
                    interval=0.5,
                    what=f"{size} spaces ready",
                )
                samples = []
                for _ in range(args.passes):
                    start = time.perf_counter()
                    reconcile_once(engine)
                    samples.append(time.perf_counter() - start)
                median = statistics.median(samples)
                notifier = []
                for _ in range(args.passes):
                    start = time.perf_counter()
                    bay.notifier.once()
                    notifier.append(time.perf_counter() - start)
                notify = statistics.median(notifier)
                results.append(
                    {
                        "spaces": size,
                        "pass_s": round(median, 4),
                        "per_space_ms": round(median / size * 1000, 3),
                        "notifier_pass_ms": round(notify * 1000, 3),
                        "notifier_ratio_to_reconcile": round(notify / median, 4),
                    }
                )
        finally:
            engine.stop()
            for name in runtime.spaces():
                runtime.destroy_orphan(name)
            store.close()
    base = results[0]["per_space_ms"]
    for row in results:
        row["per_space_ratio_to_smallest"] = round(row["per_space_ms"] / base, 2)
    print(json.dumps({"benchmark": "reconcile", "passes": args.passes, "sizes": results}, indent=2))


if __name__ == "__main__":
    main()
