"""A shared server under load, and its memory over many create/delete cycles, each against
a baseline measured in the same run (these machines are shared and noisy).

    .venv/bin/python -m bench.shared [--seconds 60] [--followers 100] [--clients 50]
                                     [--cycles 1000]

1. Follows: `--followers` clients follow a quiet log and vanish without a goodbye, while
   `--clients` clients list and show spaces for `--seconds` (loopback only). Prints every
   request's outcome, the list's p50 and p99 against the same load with no follower, and
   the server's threads and open files before the followers, with them, and after.
2. Memory: the server's resident memory after `--cycles` create/delete cycles against after
   the first 100 (the ratio should stay near 1: no growth per cycle).
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx

from tests.integration import templates as extra
from tests.support import EXAMPLES, ServerProcess, wait_until


def process_stats(server: ServerProcess) -> dict[str, int]:
    pid = server.process.pid
    status = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return {
        "threads": int(status["Threads"]),
        "open_files": len(list(Path(f"/proc/{pid}/fd").iterdir())),
        "rss_kib": int(status["VmRSS"].split()[0]),
    }


def follow(server: ServerProcess, path: str, token: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    sock.sendall(
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
        f"Authorization: Bearer {token}\r\n\r\n".encode()
    )
    if not sock.recv(12).startswith(b"HTTP/1.1 200"):
        raise SystemExit("a follow was refused")
    return sock


def load(server: ServerProcess, *, clients: int, seconds: float, names: list[str]) -> dict:
    """`clients` threads listing and showing spaces for `seconds`: every answer counted."""
    list_times: list[float] = []
    answers: dict[str, int] = {}
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client(i: int) -> None:
        with server.client() as c:
            while time.monotonic() < deadline:
                start = time.perf_counter()
                try:
                    status = str(c.get("/api/v1/spaces?limit=50", timeout=30).status_code)
                except httpx.HTTPError as e:
                    status = type(e).__name__
                took = time.perf_counter() - start
                try:
                    shown = str(c.get(f"/api/v1/spaces/{names[i % len(names)]}").status_code)
                except httpx.HTTPError as e:
                    shown = type(e).__name__
                with lock:
                    list_times.append(took)
                    answers[status] = answers.get(status, 0) + 1
                    answers[shown] = answers.get(shown, 0) + 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ordered = sorted(list_times)
    return {
        "requests": sum(answers.values()),
        "answers": answers,
        "list_p50_s": round(statistics.median(ordered), 4),
        "list_p99_s": round(ordered[int(len(ordered) * 0.99) - 1], 4),
    }


def follows_benchmark(server: ServerProcess, args: argparse.Namespace) -> dict:
    names = [f"quiet-{i}" for i in range(5)]
    for name in names:
        server.bay("space", "create", name, "--template", "quick", "--wait")
        server.bay("space", "sleep", name)  # their logs never grow now
    baseline = load(server, clients=args.clients, seconds=args.seconds / 4, names=names)
    before = process_stats(server)
    followers = [
        follow(server, f"/api/v1/spaces/{names[i % 5]}/logs/web?follow=true", server.admin_token)
        for i in range(args.followers)
    ]
    loaded = load(server, clients=args.clients, seconds=args.seconds, names=names)
    during = process_stats(server)
    for sock in followers:
        sock.close()  # abruptly: no request end, no goodbye
    time.sleep(5)
    after = process_stats(server)
    return {
        "followers": args.followers,
        "clients": args.clients,
        "seconds": args.seconds,
        "without_followers": baseline,
        "with_followers": loaded,
        "p99_ratio": round(loaded["list_p99_s"] / baseline["list_p99_s"], 2),
        "server_before": before,
        "server_with_followers": during,
        "server_after": after,
        "threads_grew_by": after["threads"] - before["threads"],
        "open_files_grew_by": after["open_files"] - before["open_files"],
    }


def memory_benchmark(server: ServerProcess, cycles: int) -> dict:
    rss = {}
    with server.client() as c:
        for i in range(1, cycles + 1):
            c.post("/api/v1/spaces", json={"name": "cycle", "template": "tiny"}).raise_for_status()
            c.delete("/api/v1/spaces/cycle").raise_for_status()
            wait_until(
                lambda: c.get("/api/v1/spaces/cycle").json()["phase"] == "deleted",
                timeout=60,
                interval=0.01,
                what="deleted",
            )
            if i in (100, cycles):
                rss[i] = process_stats(server)["rss_kib"]
    return {
        "cycles": cycles,
        "rss_kib_after_100": rss[100],
        f"rss_kib_after_{cycles}": rss[cycles],
        "ratio": round(rss[cycles] / rss[100], 3),
    }


TINY = """\
name: tiny
ttl: {default: 1h, max: 2h}
services:
  noop:
    process: {command: [sleep, "600"]}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--followers", type=int, default=100)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--cycles", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="launchbay-bench-") as tmp:
        home = Path(tmp)
        templates = home / "templates"
        templates.mkdir()
        (templates / "demo.yaml").write_text((EXAMPLES / "demo.yaml").read_text())
        extra.install(templates, "QUICK")
        (templates / "tiny.yaml").write_text(TINY)
        server = ServerProcess(
            home=home,
            templates=templates,
            extra_args=["--max-follows", str(args.followers + 10),
                        "--max-follows-per-user", str(args.followers + 10)],
        )  # fmt: skip
        server.start()
        try:
            result = {
                "follows": follows_benchmark(server, args),
                "memory": memory_benchmark(server, args.cycles),
            }
        finally:
            server.stop()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
