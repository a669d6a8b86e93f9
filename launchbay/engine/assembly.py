"""The engine's parts, wired together once: what the composition root and the tests build.

`Engine` is the shared core (store, runtimes, workers, the recorders); `Requests` write
what is wanted, `Provisioning` and `Deploys` run the jobs, `Queries` answer with frozen
views, and the loops (`engine.loops`) watch for drift and expiry.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from launchbay.domain.notices import Channel, NotifyConfig
from launchbay.engine import loops
from launchbay.engine.audit import DEFAULT_KEEP, Audit
from launchbay.engine.deploys import Deploys
from launchbay.engine.engine import Engine, Loop
from launchbay.engine.notices import Notifier
from launchbay.engine.provisioning import Provisioning
from launchbay.engine.queries import Queries
from launchbay.engine.quotas import Quotas, QuotaSettings
from launchbay.engine.requests import Requests

# The audit trail forgets what is past its keeping once an hour.
AUDIT_PRUNE_INTERVAL = 3600.0


@dataclass(frozen=True)
class Launchbay:
    engine: Engine
    requests: Requests
    queries: Queries
    deploys: Deploys
    notifier: Notifier
    audit: Audit
    quotas: Quotas
    loops: tuple[Loop, ...]

    @classmethod
    def of(
        cls,
        engine: Engine,
        *,
        notify: NotifyConfig | None = None,
        channels: Sequence[Channel] = (),
        public_url: str = "http://127.0.0.1:8470",
        keep_audit: timedelta = DEFAULT_KEEP,
        quota_settings: QuotaSettings | None = None,
    ) -> Launchbay:
        """Teach the engine's workers every job kind and make the loops."""
        provisioning = Provisioning(engine)
        quotas = Quotas(
            engine.store, clock=engine.clock, settings=quota_settings or QuotaSettings()
        )
        requests = Requests(engine, quotas)
        notifier = Notifier(
            engine,
            requests,
            config=notify or NotifyConfig(),
            channels=channels,
            public_url=public_url,
        )
        audit = Audit(engine.store, clock=engine.clock, keep=keep_audit)

        def keep_audit_trail(_: Engine) -> None:
            audit.prune()

        keeper = Loop("audit-keeper", AUDIT_PRUNE_INTERVAL, keep_audit_trail, leader_only=True)
        return cls(
            engine=engine,
            requests=requests,
            queries=Queries(engine),
            deploys=Deploys(engine, requests, provisioning),
            notifier=notifier,
            audit=audit,
            quotas=quotas,
            loops=(*loops.install(engine), notifier.loop(), keeper),
        )

    def start(self) -> None:
        self.engine.start(self.loops)

    def stop(self) -> None:
        self.engine.stop()
