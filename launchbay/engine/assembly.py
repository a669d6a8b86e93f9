"""The engine's parts, wired together once: what the composition root and the tests build.

`Engine` is the shared core (store, runtimes, workers, the recorders); `Requests` write
what is wanted, `Provisioning` and `Deploys` run the jobs, `Queries` answer with frozen
views, and the loops (`engine.loops`) watch for drift and expiry.
"""

from __future__ import annotations

from dataclasses import dataclass

from launchbay.engine import loops
from launchbay.engine.deploys import Deploys
from launchbay.engine.engine import Engine, Loop
from launchbay.engine.provisioning import Provisioning
from launchbay.engine.queries import Queries
from launchbay.engine.requests import Requests


@dataclass(frozen=True)
class Launchbay:
    engine: Engine
    requests: Requests
    queries: Queries
    deploys: Deploys
    loops: tuple[Loop, ...]

    @classmethod
    def of(cls, engine: Engine) -> Launchbay:
        """Teach the engine's workers every job kind and make the loops."""
        provisioning = Provisioning(engine)
        requests = Requests(engine)
        return cls(
            engine=engine,
            requests=requests,
            queries=Queries(engine),
            deploys=Deploys(engine, requests, provisioning),
            loops=tuple(loops.install(engine)),
        )

    def start(self) -> None:
        self.engine.start(self.loops)

    def stop(self) -> None:
        self.engine.stop()
