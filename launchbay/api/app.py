"""The FastAPI application: built from an engine, never at import time."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text

from launchbay import __version__
from launchbay.api import audit, docs, errors, keys, quotas, teams, webhooks
from launchbay.api.follows import Follows
from launchbay.api.guard import DEFAULT_MAX_BODY, Guard
from launchbay.api.routes import router
from launchbay.engine.accounts import Accounts
from launchbay.engine.assembly import Launchbay
from launchbay.engine.webhooks import GitHubHooks


def create_app(
    *,
    bay: Launchbay,
    accounts: Accounts,
    github: GitHubHooks | None = None,
    on_start: Callable[[], None] | None = None,
    follows: Follows | None = None,
    allowed_hosts: frozenset[str] | None = None,
    max_body: int = DEFAULT_MAX_BODY,
) -> FastAPI:
    """The server's app. `on_start` runs once the app serves (the engine's workers and
    loops start there); `allowed_hosts`: the Host names requests may carry (None: any)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if on_start is not None:
            on_start()
        yield
        if github is not None:
            github.stop()
        bay.stop()

    app = FastAPI(
        title="Launchbay", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None
    )
    app.state.bay = bay
    app.state.accounts = accounts
    app.state.github = github
    app.state.follows = follows or Follows()
    engine = bay.engine
    errors.install(app)
    app.add_middleware(audit.Recorder, audit=bay.audit)
    app.add_middleware(Guard, allowed_hosts=allowed_hosts, max_body=max_body)
    docs.install(app)
    app.include_router(router)
    app.include_router(webhooks.router)
    app.include_router(keys.router)
    app.include_router(audit.router)
    app.include_router(quotas.router)
    app.include_router(teams.router)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    def readyz() -> JSONResponse:
        try:
            with engine.store.read() as s:
                s.execute(text("SELECT 1"))
        except Exception as e:  # readiness reports any store failure, whatever its kind
            return JSONResponse(
                {"status": "store unavailable", "detail": str(e)[:200]}, status_code=503
            )
        if not engine.store.can_write():
            detail = (engine.store.write_failure or "")[:200]
            return JSONResponse(
                {"status": "store cannot take writes", "detail": detail}, status_code=503
            )
        down = engine.threads.down()
        if down:
            detail = "; ".join(f"{name}: {why}" for name, why in sorted(down.items()))
            return JSONResponse(
                {"status": "a server thread is restarting", "detail": detail[:300]},
                status_code=503,
            )
        return JSONResponse({"status": "ready", "leader": engine.leader.holds()})

    engine.metrics.gauge(
        "launchbay_log_follows", "Logs followed right now.", lambda: app.state.follows.open
    )

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        """Prometheus' text format: see `engine/metrics.py` for what is measured."""
        return Response(engine.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return app
