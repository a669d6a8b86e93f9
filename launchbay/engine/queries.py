"""Queries: what the API, the portal and the CLI read, as frozen views.

Every answer is copied out of the store inside the read transaction (`engine.views`), so
nothing above the engine holds a row or reaches into the store.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

from launchbay.domain.errors import Invalid
from launchbay.domain.names import ServiceName
from launchbay.domain.template import RunsOn, Template
from launchbay.engine.engine import Engine, Snapshot
from launchbay.engine.views import DeliveryView, DeployView, EventView, JobView, SpaceView
from launchbay.store import deliveries as store_deliveries
from launchbay.store import jobs as store_jobs
from launchbay.store import queries as q
from launchbay.store.queries import SORTS, SpaceFilter

__all__ = ["SORTS", "Queries", "SpaceFilter"]


class Queries:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def space(self, name: str) -> SpaceView:
        """The space of that name: the live one, else the newest deleted one."""
        with self.engine.store.read() as s:
            return self.engine.view(q.find_space(s, name))

    def spaces(
        self, where: SpaceFilter, *, limit: int, before_id: int | None
    ) -> tuple[list[SpaceView], int]:
        """Newest first, `limit` of them from before `before_id`, and how many match."""
        with self.engine.store.read() as s:
            rows, total = q.list_spaces(s, where, limit=limit, before_id=before_id)
            return [self.engine.view(x) for x in rows], total

    def page(
        self, where: SpaceFilter, *, sort: str, offset: int, limit: int
    ) -> tuple[list[SpaceView], int]:
        """One page of the dashboard, in one of `SORTS`."""
        if sort not in SORTS:
            raise Invalid(f"sort must be one of {', '.join(SORTS)}")
        with self.engine.store.read() as s:
            rows, total = q.page_spaces(s, where, sort=sort, offset=offset, limit=limit)
            return [self.engine.view(x) for x in rows], total

    def is_live(self, name: str) -> bool:
        """A space of that name exists and is not deleted."""
        with self.engine.store.read() as s:
            return q.live_space(s, name) is not None

    def events(self, name: str, *, limit: int = 200) -> list[EventView]:
        """Newest first."""
        with self.engine.store.read() as s:
            return [EventView.of(e) for e in q.events(s, q.find_space(s, name), limit=limit)]

    def jobs(self, name: str) -> list[JobView]:
        """What is queued and running for the space, then what finished last."""
        with self.engine.store.read() as s:
            return [JobView.of(j) for j in store_jobs.of_space(s, q.find_space(s, name).id)]

    def deploys(self, name: str, *, limit: int = 100) -> list[DeployView]:
        """Newest first: which service, from which version to which, who, when, result."""
        with self.engine.store.read() as s:
            return [DeployView.of(d) for d in q.deploys(s, q.find_space(s, name), limit=limit)]

    def deliveries(self, *, limit: int) -> list[DeliveryView]:
        """The newest webhook deliveries and what was done with each."""
        with self.engine.store.read() as s:
            return [DeliveryView.of(d) for d in store_deliveries.recent(s, limit=limit)]

    def ready_history(self, template: str) -> list[float]:
        """Time to ready of the template's newest spaces (is it getting slower?)."""
        with self.engine.store.read() as s:
            return q.ready_history(s, template)

    def logs(
        self,
        name: str,
        service: str,
        *,
        tail: int,
        follow: bool,
        stop: threading.Event | None = None,
    ) -> Iterator[str]:
        with self.engine.store.read() as s:
            space = q.find_space(s, name)
            q.service_state(space, service)
            snapshot = Snapshot.of(space)
        return self.engine.runtime(snapshot.runtime).logs(
            snapshot.ref, ServiceName(service), tail=tail, follow=follow, stop=stop
        )

    def templates(self) -> list[Template]:
        return self.engine.catalog.all()

    def template(self, name: str) -> Template:
        return self.engine.catalog.get(name)

    def template_problems(self) -> dict[str, list[str]]:
        return self.engine.catalog.problems()

    def runtimes(self) -> dict[str, dict[str, object]]:
        """Each enabled runtime: usable or not, and why."""
        return {
            name: {"ok": state.available, "detail": state.detail}
            for name, state in self.engine.board.states().items()
        }

    def runtime_names(self) -> list[str]:
        return sorted(self.engine.runtimes)

    def runs_on(self) -> list[RunsOn]:
        """This server's runtimes, as templates see them."""
        return [self.engine.runs_on(name) for name in self.runtime_names()]

    def runtimes_for(self, template: Template) -> list[str]:
        """This server's runtimes that can run every service of `template`."""
        return self.engine.runtimes_for(template)

    def runtimes_down(self) -> dict[str, str]:
        return self.engine.board.down()
