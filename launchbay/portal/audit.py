"""The audit trail's page: an admin sees every record, anyone else their own."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from launchbay.engine.assembly import Launchbay
from launchbay.engine.audit import Filters
from launchbay.portal.routes import ViewerDep, render

router = APIRouter(include_in_schema=False)
PAGE = 100


@router.get("/audit")
def audit_page(
    request: Request,
    who: ViewerDep,
    actor: str = "",
    action: str = "",
    target: str = "",
    outcome: str = "",
    cursor: str = "",
) -> HTMLResponse:
    bay: Launchbay = request.app.state.bay
    wanted = {"actor": actor, "action": action, "target": target, "outcome": outcome}
    filters = Filters(
        actor=actor or None, action=action or None, target=target or None, outcome=outcome or None
    )
    entries, after = bay.audit.page(
        filters, viewer=who, cursor=int(cursor) if cursor.isdigit() else None, limit=PAGE
    )
    more = urlencode({k: v for k, v in wanted.items() if v})
    return render(
        request,
        "audit.html",
        {"entries": entries, "wanted": wanted, "next": after, "query": more},
    )
