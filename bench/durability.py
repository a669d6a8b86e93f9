"""Durable work under kill -9: rounds of mixed operations (create, deploy, sleep, wake,
extend, delete; 10 in flight) against a real server that is killed with SIGKILL at random
moments and started again; after each round every job must have ended and the store must
match the processes that run.

    .venv/bin/python -m bench.durability [--rounds 20] [--operations 200] [--kills 3]

Prints, per round and in total, what the server answered, the jobs by outcome and every
disagreement found (all should be zero), and the time from the last operation to a settled
state against a round without kills (a ratio, measured in the same run).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from tests import chaos
from tests.integration import templates as extra
from tests.support import EXAMPLES, ServerProcess


def one_round(seed: int, operations: int, kills: int) -> tuple[chaos.ChaosReport, float]:
    home = Path(tempfile.mkdtemp(prefix="launchbay-durability-"))
    shutil.copytree(EXAMPLES.parent, home / "examples")
    templates = home / "examples" / "templates"
    extra.install(templates, "QUICK")
    (home / "home").mkdir()
    server = ServerProcess(
        home=home / "home",
        templates=templates,
        extra_args=["--reconcile-interval", "1", "--orphan-grace", "2"],
    )
    server.start()
    try:
        started = time.monotonic()
        report = chaos.run(server, operations=operations, kills=kills, seed=seed, settle=300)
        return report, time.monotonic() - started
    finally:
        server.stop()
        shutil.rmtree(home, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--operations", type=int, default=200)
    parser.add_argument("--kills", type=int, default=3)
    args = parser.parse_args()
    baseline, baseline_seconds = one_round(0, args.operations, kills=0)
    totals: Counter[str] = Counter()
    answers: Counter[str] = Counter()
    rounds = []
    seconds = 0.0
    for seed in range(1, args.rounds + 1):
        report, took = one_round(seed, args.operations, args.kills)
        seconds += took
        rounds.append({"seed": seed, "seconds": round(took, 1), **report.as_dict()})
        answers.update(report.answers)
        totals.update(report.jobs)
        totals["kills"] += report.kills
        for problem in ("failed_without_reason", "transitional", "unknown_running", "missing"):
            value = report.as_dict()[problem]
            totals[problem] += value if isinstance(value, int) else len(value)
        print(json.dumps(rounds[-1]), file=sys.stderr)
    result = {
        "rounds": args.rounds,
        "operations_per_round": args.operations,
        "answers": dict(answers),
        "totals": dict(totals),
        "all_converged": all(
            not (r["transitional"] or r["unknown_running"] or r["missing"]) for r in rounds
        )
        and not totals["failed_without_reason"],
        "round_seconds_with_kills": round(seconds / args.rounds, 1),
        "round_seconds_without_kills": round(baseline_seconds, 1),
        "ratio": round(seconds / args.rounds / baseline_seconds, 2),
        "baseline_jobs": dict(baseline.jobs),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
