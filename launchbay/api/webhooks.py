"""`/api/v1/webhooks/github`: authenticated by the delivery's signature, not a token."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from launchbay.api.deps import ActorDep, QueriesDep
from launchbay.api.schemas import ERROR_RESPONSES, DeliveryOut
from launchbay.domain.auth import require_admin
from launchbay.domain.errors import NotFound
from launchbay.engine.webhooks import GitHubHooks

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"], responses=ERROR_RESPONSES)


def github_hooks(request: Request) -> GitHubHooks:
    hooks: GitHubHooks | None = request.app.state.github
    if hooks is None:
        raise NotFound(
            "GitHub webhooks are not configured on this server (see `github:` in --config)"
        )
    return hooks


@router.post("/github", status_code=202)
async def github(
    request: Request,
    background: BackgroundTasks,
    hooks: Annotated[GitHubHooks, Depends(github_hooks)],
) -> JSONResponse:
    """Verify, de-duplicate and record a delivery, answer 202, then act in the background."""
    limit = hooks.config.max_body
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return _too_large(limit)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return _too_large(limit)
    accepted = await run_in_threadpool(
        hooks.accept, body=bytes(body), headers=dict(request.headers)
    )
    if accepted.work is not None:
        background.add_task(run_in_threadpool, accepted.work)
    return JSONResponse(
        {"delivery": accepted.delivery, "status": accepted.status, "reason": accepted.reason},
        status_code=202,
    )


@router.get("/github/deliveries", response_model=list[DeliveryOut])
def deliveries(
    caller: ActorDep,
    queries: QueriesDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[DeliveryOut]:
    """Recent deliveries and what was done with each (admins only)."""
    require_admin(caller, action="read webhook deliveries")
    return [DeliveryOut.model_validate(d) for d in queries.deliveries(limit=limit)]


def _too_large(limit: int) -> JSONResponse:
    return JSONResponse({"detail": f"the body is over the limit of {limit} bytes"}, status_code=413)
