"""Signing in to the portal: with a token, or with a one-time link (`bay server` prints one,
`bay portal` opens one); and signing out. Each is on the audit trail."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from launchbay.domain.auth import Actor, require_whole_key
from launchbay.domain.errors import Forbidden, Unauthorized
from launchbay.portal.routes import check_csrf, portal, render, session_viewer
from launchbay.portal.sessions import SESSION_COOKIE, SESSION_SECONDS

router = APIRouter(include_in_schema=False)


@router.get("/signin")
def signin_page(request: Request, next: str = "/") -> HTMLResponse:
    return render(request, "signin.html", {"next": _safe_next(next), "error": None})


@router.post("/signin")
def signin(
    request: Request,
    token: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    check_csrf(request, csrf)
    try:
        actor = portal(request).accounts.authenticate(token.strip())
        require_whole_key(actor, action="sign in to the portal")
    except (Unauthorized, Forbidden) as e:
        status = 401 if isinstance(e, Unauthorized) else 403
        return render(
            request, "signin.html", {"next": _safe_next(next), "error": e.message}, status=status
        )
    return _signed_in(request, actor, _safe_next(next))


@router.get("/signin/link/{token}")
def signin_link(request: Request, token: str) -> Response:
    """A one-time link (`bay server` prints one, `bay portal` opens one): signs in once,
    within its minute; any process on the machine can reach the portal, none can sign in
    without a link."""
    try:
        actor = portal(request).accounts.redeem_signin_link(token[:100])
    except Unauthorized as e:
        return render(request, "signin.html", {"next": "/", "error": e.message}, status=401)
    return _signed_in(request, actor, "/")


@router.post("/signout")
def signout(request: Request, csrf: Annotated[str, Form()] = "") -> Response:
    check_csrf(request, csrf)
    request.state.actor = session_viewer(request)  # on the audit trail
    response = RedirectResponse("/signin", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


def _signed_in(request: Request, actor: Actor, next_url: str) -> Response:
    request.state.actor = actor  # a sign-in is on the audit trail
    response = RedirectResponse(next_url, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        portal(request).signer.session(actor.name),
        max_age=SESSION_SECONDS,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
    return response


def _safe_next(target: str) -> str:
    return target if target.startswith("/") and not target.startswith("//") else "/"
