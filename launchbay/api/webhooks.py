"""`/api/v1/webhooks/github`: authenticated by the delivery's signature, not a token."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
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
    hooks: Annotated[GitHubHooks, Depends(github_hooks)],
) -> JSONResponse:
    """Verify, de-duplicate and record a delivery as work owed, and answer 202; the work
    is done by the server's webhook workers, and survives a restart."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json":
        return JSONResponse(
            {
                "detail": f"content type must be application/json, not {media or 'none'!r} "
                "(set the webhook's Content type to application/json in GitHub)"
            },
            status_code=415,
        )
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
