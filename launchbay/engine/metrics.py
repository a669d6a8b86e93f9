"""How the engine is doing, for Prometheus: `/metrics` renders this registry.

Events (a job ended, a pass took so long, a space became ready) are counted and timed as
they happen; states (jobs queued and running, spaces by phase and past their expiry,
runtime availability) are read from the store and the runtime board at each scrape, so
every replica reports the same truth about the shared store.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from launchbay.store import jobs as store_jobs
from launchbay.store import queries as q
from launchbay.store.db import Store

# Seconds: from a fraction of a second (a quick job, a pass) to ten minutes (a slow chart).
BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600)


class EngineMetrics:
    def __init__(self) -> None:
        # A registry of its own: several engines in one process (tests) never clash.
        self.registry = CollectorRegistry(auto_describe=True)
        self._gauges: dict[str, tuple[str, Callable[[], float]]] = {}
        r = self.registry
        self.jobs_finished = Counter(
            "launchbay_jobs_finished",
            "Jobs that ended, by kind and outcome (done or failed).",
            ["kind", "outcome"],
            registry=r,
        )
        self.jobs_retried = Counter(
            "launchbay_jobs_retried",
            "Job attempts that failed temporarily and were queued again, by kind.",
            ["kind"],
            registry=r,
        )
        self.pass_seconds = Histogram(
            "launchbay_loop_pass_seconds",
            "How long one pass of a loop (reconciler, reaper) took.",
            ["loop"],
            buckets=BUCKETS,
            registry=r,
        )
        self.space_ready_seconds = Histogram(
            "launchbay_space_ready_seconds",
            "From the start of provisioning to every service ready, by template.",
            ["template"],
            buckets=BUCKETS,
            registry=r,
        )
        self.service_ready_seconds = Histogram(
            "launchbay_service_ready_seconds",
            "From a service's start to its health passing, by template and service.",
            ["template", "service"],
            buckets=BUCKETS,
            registry=r,
        )
        self.orphans_found = Counter(
            "launchbay_orphans_found",
            "Spaces a runtime held with no live record, when first seen, by runtime.",
            ["runtime"],
            registry=r,
        )
        self.orphans_removed = Counter(
            "launchbay_orphans_removed",
            "Orphaned spaces removed from a runtime, by runtime.",
            ["runtime"],
            registry=r,
        )
        self.thread_restarts = Counter(
            "launchbay_thread_restarts",
            "Server threads (dispatcher, heartbeat, loops) that raised and were started "
            "again, by thread.",
            ["thread"],
            registry=r,
        )

    def watch(
        self, store: Store, runtimes: Callable[[], dict[str, bool]], clock: Callable[[], datetime]
    ) -> None:
        """Report the store's and the runtimes' state at each scrape."""
        self.registry.register(_StateCollector(store, runtimes, clock, self._gauges))

    def gauge(self, name: str, documentation: str, read: Callable[[], float]) -> None:
        """A gauge read at each scrape (an outer layer's state: log follows open)."""
        self._gauges[name] = (documentation, read)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _StateCollector(Collector):
    def __init__(
        self,
        store: Store,
        runtimes: Callable[[], dict[str, bool]],
        clock: Callable[[], datetime],
        gauges: dict[str, tuple[str, Callable[[], float]]],
    ) -> None:
        self.store, self.runtimes, self.clock, self.gauges = store, runtimes, clock, gauges

    def describe(self) -> list[Metric]:
        return []  # read at scrape time only

    def collect(self) -> Iterator[Metric]:
        now = self.clock()
        with self.store.read() as s:
            phases = q.count_by_phase(s)
            jobs = store_jobs.counts(s)
            overdue = q.overdue_seconds(s, now=now)
        spaces = GaugeMetricFamily("launchbay_spaces", "Live spaces by phase.", labels=["phase"])
        for phase, count in sorted(phases.items()):
            spaces.add_metric([phase], count)
        yield spaces
        pending = GaugeMetricFamily(
            "launchbay_jobs", "Jobs queued or running now, by kind.", labels=["kind", "state"]
        )
        for (kind, state), count in sorted(jobs.items()):
            if state in ("queued", "running"):
                pending.add_metric([kind, state], count)
        yield pending
        yield GaugeMetricFamily(
            "launchbay_spaces_past_expiry",
            "Live spaces past their expiry (cleanup debt: the reaper is behind, or copilot).",
            value=len(overdue),
        )
        yield GaugeMetricFamily(
            "launchbay_spaces_past_expiry_max_seconds",
            "How long the most overdue live space is past its expiry.",
            value=max(overdue, default=0.0),
        )
        available = GaugeMetricFamily(
            "launchbay_runtime_available",
            "1 if the runtime answers, 0 if not (as last seen).",
            labels=["runtime"],
        )
        for name, up in sorted(self.runtimes().items()):
            available.add_metric([name], 1.0 if up else 0.0)
        yield available
        for name, (documentation, read) in sorted(self.gauges.items()):
            yield GaugeMetricFamily(name, documentation, value=read())
