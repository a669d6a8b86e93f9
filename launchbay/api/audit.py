"""The audit trail over HTTP: the recorder that writes one record for each change a signed-in
caller asks of the server (API and portal alike), and `GET /api/v1/audit` that reads them.

A route (or its auth dependency) names the caller by setting `request.state.actor`, and a
create names what it makes by `request.state.audit_target`; the recorder writes the record
before the answer leaves, so a client that has its answer finds the record. A request
without a signed-in caller (a wrong token, a bad sign-in link) is not recorded: anyone can
send those, and a trail that anyone can fill is no trail."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from launchbay.api.deps import ActorDep, bay
from launchbay.api.schemas import ERROR_RESPONSES, Instant
from launchbay.domain.auth import Actor
from launchbay.domain.durations import DURATION_PATTERN, parse_duration
from launchbay.engine.audit import Audit, Entry, Filters, credential_of

router = APIRouter(prefix="/api/v1/audit", tags=["audit"], responses=ERROR_RESPONSES)

CHANGES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
UNRECORDED = ("/api/v1/webhooks/",)  # a delivery is recorded by what its worker does
SIGN_IN = "/signin/link/"
# Route (endpoint) names, API and portal, as the trail names their actions.
ACTIONS = {
    "create_space": "space.create",
    "apply_space": "space.apply",
    "deploy_service": "space.deploy",
    "delete_space": "space.delete",
    "extend_space": "space.extend",
    "extend": "space.extend",
    "retry_space": "space.retry",
    "recreate_space": "space.recreate",
    "sleep_space": "space.sleep",
    "wake_space": "space.wake",
    "add_channel": "channel.add",
    "remove_channel": "channel.remove",
    "create_user": "user.create",
    "signin_link": "signin",
    "signin": "signin",
    "signout": "signout",
    "create_key": "key.create",
    "revoke_key": "key.revoke",
    "rotate_key": "key.rotate",
    "set_quota": "quota.set",
    "create_team": "team.create",
    "delete_team": "team.delete",
    "set_member": "team.member.set",
    "remove_member": "team.member.remove",
}
OUTCOMES = {401: "unauthenticated", 403: "refused", 404: "not found", 409: "conflict"}


def outcome_of(status: int) -> str:
    if status < 400:
        return "ok"
    if status in (400, 413, 422):
        return "invalid"
    return OUTCOMES.get(status, "unavailable" if status == 503 else "failed")


class Recorder:
    """One audit record per change asked by a signed-in caller, written before the answer."""

    def __init__(self, app: ASGIApp, *, audit: Audit) -> None:
        self.app = app
        self.audit = audit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _recorded(scope):
            await self.app(scope, receive, send)
            return

        async def recording(message: Message) -> None:
            if message["type"] == "http.response.start":
                entry = _entry(scope, int(message["status"]), self.audit.clock())
                if entry is not None:
                    await anyio.to_thread.run_sync(self.audit.record, entry)
            await send(message)

        await self.app(scope, receive, recording)


def _recorded(scope: Scope) -> bool:
    path = str(scope.get("path", ""))
    if scope["method"] == "GET":
        return path.startswith(SIGN_IN)
    return scope["method"] in CHANGES and not path.startswith(UNRECORDED)


def _entry(scope: Scope, status: int, now: datetime) -> Entry | None:
    state: dict[str, Any] = scope.get("state") or {}
    actor = state.get("actor")
    if not isinstance(actor, Actor):
        return None
    route = scope.get("route")
    name = str(getattr(route, "name", "") or "")
    params: dict[str, Any] = scope.get("path_params") or {}
    via = "api" if str(scope.get("path", "")).startswith("/api/") else "portal"
    action = ACTIONS.get(name) or (
        f"space.{params['action']}" if name == "act" and "action" in params else name
    )
    client = scope.get("client")
    target = state.get("audit_target") or params.get("name") or params.get("channel_id") or ""
    return Entry(
        at=now,
        actor=actor.name,
        credential=credential_of(actor, via=via),
        via=via,
        action=action or f"{scope['method']} {scope.get('path', '')}",
        target=str(target),
        address=str(client[0]) if client else "",
        outcome=outcome_of(status),
        status=status,
    )


# -- reading ---------------------------------------------------------------------------------


def audit(request: Request) -> Audit:
    trail: Audit = bay(request).audit
    return trail


class AuditOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: Instant
    actor: str
    credential: str
    via: str
    action: str
    target: str
    address: str
    outcome: str
    status: int


class AuditPage(BaseModel):
    items: list[AuditOut]
    next_cursor: str | None


@router.get(
    "",
    response_model=AuditPage,
    responses={200: {"content": {"application/jsonl": {"schema": {"type": "string"}}}}},
)
def read_audit(
    request: Request,
    caller: ActorDep,
    trail: Annotated[Audit, Depends(audit)],
    actor: Annotated[str | None, Query(max_length=63)] = None,
    action: Annotated[str | None, Query(max_length=63)] = None,
    target: Annotated[str | None, Query(max_length=255)] = None,
    outcome: Annotated[str | None, Query(max_length=16)] = None,
    since: Annotated[
        str | None,
        Query(description="e.g. 24h: newer records only", pattern=DURATION_PATTERN, max_length=40),
    ] = None,
    cursor: Annotated[
        str | None, Query(description="next_cursor of the previous page", pattern="^[0-9]{1,18}$")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    format: Annotated[str, Query(pattern="^(json|jsonl)$")] = "json",
) -> Any:
    """Newest first. An admin reads every record, anyone else their own. `format=jsonl`
    gives the page as JSON lines (one record a line), for export."""
    filters = Filters(
        actor=actor,
        action=action,
        target=target,
        outcome=outcome,
        since=trail.clock() - parse_duration(since) if since else None,
    )
    entries, after = trail.page(
        filters, viewer=caller, cursor=int(cursor) if cursor else None, limit=limit
    )
    items = [AuditOut.model_validate(entry) for entry in entries]
    next_cursor = str(after) if after is not None else None
    if format == "jsonl":
        lines = "".join(json.dumps(item.model_dump(mode="json")) + "\n" for item in items)
        headers = {"x-next-cursor": next_cursor} if next_cursor else {}
        return Response(lines, media_type="application/jsonl", headers=headers)
    return AuditPage(items=items, next_cursor=next_cursor)
