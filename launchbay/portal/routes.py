"""Portal pages, live fragments and forms. Handlers translate between HTML and the engine;
rights and rules stay in the engine, errors go through the one error mapping."""

from __future__ import annotations

import contextlib
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, FastAPI, Form, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import (
    FileResponse,
    HTMLResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from launchbay.domain.auth import Actor
from launchbay.domain.durations import format_duration
from launchbay.domain.errors import (
    Conflict,
    Forbidden,
    Invalid,
    LaunchbayError,
    NotFound,
    http_status,
)
from launchbay.domain.names import parse_space_name
from launchbay.domain.spec import choose_ttl
from launchbay.engine.accounts import Accounts
from launchbay.engine.assembly import Launchbay
from launchbay.engine.notices import Notifier
from launchbay.engine.queries import SORTS, Queries, SpaceFilter
from launchbay.engine.requests import CreateSpace, Requests
from launchbay.portal import views
from launchbay.portal.sessions import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    Signer,
    new_browser_id,
)

HERE = Path(__file__).parent
PAGE_SIZE = 50
router = APIRouter(include_in_schema=False)


@dataclass
class Portal:
    requests: Requests
    queries: Queries
    notifier: Notifier
    accounts: Accounts
    signer: Signer
    templates: Jinja2Templates


class SignInRequired(Exception):
    pass


def install(
    app: FastAPI,
    *,
    bay: Launchbay,
    accounts: Accounts,
    secret: bytes,
) -> None:
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.globals.update(
        rel=views.relative,
        iso=views.iso,
        expiry_class=views.expiry_class,
        can_modify=views.can_modify,
        is_live=views.is_live,
        median=statistics.median,
        ttl_default=views.ttl_default,
        ttl_max=views.ttl_max,
        extension_left=views.extension_left,
        clock_time=views.clock_time,
    )
    app.state.portal = Portal(
        bay.requests, bay.queries, bay.notifier, accounts, Signer(secret), templates
    )
    # Errors outside the API are portal pages, rendered on the event loop: they name the
    # viewer from the signed session alone (a database read would stall every request).
    app.state.error_page = lambda request, status, message: render(
        request,
        "error.html",
        {"status": status, "message": message, "viewer": session_viewer(request)},
        status=status,
    )
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(router)
    from launchbay.portal import audit, signin  # their pages build on this module's parts

    app.include_router(signin.router)
    app.include_router(audit.router)

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> FileResponse:
        return FileResponse(HERE / "static" / "favicon.svg", media_type="image/svg+xml")

    @app.exception_handler(SignInRequired)
    async def _sign_in(request: Request, _: SignInRequired) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if request.headers.get("hx-request"):
            return Response(status_code=401, headers={"HX-Redirect": "/signin"})
        return RedirectResponse("/signin?" + urlencode({"next": target}), status_code=303)


def portal(request: Request) -> Portal:
    value: Portal = request.app.state.portal
    return value


PortalDep = Annotated[Portal, Depends(portal)]


def session_viewer(request: Request) -> Actor | None:
    """Whom the session cookie names, without asking the database (their role unknown)."""
    name = portal(request).signer.user(request.cookies.get(SESSION_COOKIE))
    return Actor(name=name) if name else None


def optional_viewer(request: Request) -> Actor | None:
    seen = session_viewer(request)
    return portal(request).accounts.by_name(seen.name) if seen else None


def viewer(request: Request) -> Actor:
    if (found := optional_viewer(request)) is None:
        raise SignInRequired()
    request.state.actor = found  # whom the audit trail names (api/audit.py)
    return found


ViewerDep = Annotated[Actor, Depends(viewer)]


def check_csrf(request: Request, form_token: str | None) -> None:
    """Every state-changing form carries the CSRF token of this browser (field or header)."""
    token = form_token or request.headers.get("x-csrf-token")
    if not portal(request).signer.csrf_ok(request.cookies.get(CSRF_COOKIE), token):
        raise Forbidden("the form's CSRF token is missing or wrong: reload the page and try again")


def render(
    request: Request, name: str, context: dict[str, Any], *, status: int = 200
) -> HTMLResponse:
    p = portal(request)
    browser = request.cookies.get(CSRF_COOKIE) or new_browser_id()
    context = {
        "viewer": context["viewer"] if "viewer" in context else optional_viewer(request),
        "csrf": p.signer.csrf_token(browser),
        **context,
    }
    response = p.templates.TemplateResponse(request, name, context, status_code=status)
    if CSRF_COOKIE not in request.cookies:
        response.set_cookie(CSRF_COOKIE, browser, httponly=True, samesite="strict")
    return response


# -- the dashboard -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Listing:
    scope: str
    phase: str
    template: str
    runtime: str
    q: str
    sort: str
    page: int

    def query(self, **change: Any) -> str:
        values = {k: v for k, v in {**self.__dict__, **change}.items() if v not in ("", None)}
        return urlencode(values)


def listing(
    scope: str = "all",
    phase: str = "",
    template: str = "",
    runtime: str = "",
    q: str = "",
    sort: str = "newest",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Listing:
    if sort not in SORTS:
        raise Invalid(f"sort must be one of {', '.join(SORTS)}")
    if scope not in ("all", "mine"):
        raise Invalid("scope must be all or mine")
    return Listing(scope, phase, template, runtime, q.strip(), sort, page)


ListingDep = Annotated[Listing, Depends(listing)]


@router.get("/")
def dashboard(request: Request, who: ViewerDep, shown: ListingDep) -> HTMLResponse:
    p = portal(request)
    return render(
        request,
        "dashboard.html",
        {
            **_rows(p, who, shown),
            "phases": views.PHASES,
            "template_names": [t.name for t in p.queries.templates()],
            "runtimes": p.queries.runtime_names(),
            "runtimes_down": p.queries.runtimes_down(),
            "sorts": list(SORTS),
            "ended": p.queries.spaces(
                SpaceFilter(ended_since=p.notifier.ended_since()), limit=20, before_id=None
            )[0],
        },
    )


@router.get("/fragments/spaces")
def dashboard_rows(request: Request, who: ViewerDep, shown: ListingDep) -> HTMLResponse:
    """The live part of the dashboard, polled by htmx."""
    return render(request, "_spaces.html", _rows(portal(request), who, shown))


def _rows(p: Portal, who: Actor, shown: Listing) -> dict[str, Any]:
    where = SpaceFilter(
        owner=who.name if shown.scope == "mine" else None,
        phase=shown.phase or None,
        template=shown.template or None,
        runtime=shown.runtime or None,
        search=shown.q or None,
    )
    spaces, total = p.queries.page(
        where, sort=shown.sort, offset=(shown.page - 1) * PAGE_SIZE, limit=PAGE_SIZE
    )
    pages = max(1, -(-total // PAGE_SIZE))
    return {"spaces": spaces, "total": total, "shown": shown, "pages": pages}


# -- a space -----------------------------------------------------------------------------------


@router.get("/spaces/new")
def new_space_page(request: Request, who: ViewerDep, template: str = "") -> HTMLResponse:
    return _new_form(request, template, values={}, errors={})


@router.post("/spaces/new")
async def create_space(request: Request, who: ViewerDep) -> Response:
    """Validate each field with the engine's own rules, showing every error next to its field.
    The form's fields depend on the template (param.NAME, version.SERVICE), hence no Form()."""
    form = await request.form()
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    check_csrf(request, values.get("csrf"))
    request.state.audit_target = values.get("name", "")[:63]
    return await run_in_threadpool(_create_from_form, request, who, values)


def _new_form(
    request: Request,
    template_name: str,
    *,
    values: dict[str, str],
    errors: dict[str, str],
    status: int = 200,
) -> HTMLResponse:
    p = portal(request)
    # Only the templates some runtime of this server can run.
    templates = [t for t in p.queries.templates() if p.queries.runtimes_for(t)]
    chosen = next(
        (t for t in templates if t.name == template_name), templates[0] if templates else None
    )
    return render(
        request,
        "new.html",
        {
            "templates": templates,
            "chosen": chosen,
            "runtimes": p.queries.runtimes_for(chosen) if chosen else [],
            "values": values,
            "errors": errors,
        },
        status=status,
    )


# What a finished action says on the page it returns to (`?done=`): fixed texts, so a
# link cannot make the portal say anything else.
DONE = {
    "extend": "Extended: the new expiry is shown below.",
    "sleep": "Going to sleep: its services are being stopped.",
    "wake": "Waking up: its services are being started.",
    "retry": "Retrying: the services that failed are being started again.",
    "recreate": "Recreating: everything it ran is removed and made again.",
    "delete": "Being deleted.",
}


@router.get("/spaces/{name}")
def space_page(request: Request, name: str, who: ViewerDep, done: str = "") -> HTMLResponse:
    notice = {"kind": "ok", "text": DONE[done]} if done in DONE else None
    return render(request, "space.html", {**_space_context(request, name), "notice": notice})


def _act(request: Request, name: str, action: str, run: Callable[[], object]) -> Response:
    """Run a space's action; back to its page saying it was done, or the same page with
    the error in a notice (and the error's status)."""
    try:
        run()
    except LaunchbayError as e:
        context = {**_space_context(request, name), "notice": {"kind": "error", "text": e.message}}
        return render(request, "space.html", context, status=http_status(e))
    return RedirectResponse(f"/spaces/{name}?done={action}", status_code=303)


@router.get("/spaces/{name}/live")
def space_live(request: Request, name: str, who: ViewerDep) -> HTMLResponse:
    """The live part of a space's page. A space that vanished says so, not a stack trace."""
    try:
        context = _space_context(request, name)
    except NotFound:
        return render(request, "_space_gone.html", {"name": name})
    return render(request, "_space_live.html", context)


def _space_context(request: Request, name: str) -> dict[str, Any]:
    p = portal(request)
    space = p.queries.space(name)
    template = None
    with contextlib.suppress(NotFound):
        template = p.queries.template(space.template)
    return {
        "space": space,
        "events": p.queries.events(name, limit=100),
        "deploys": p.queries.deploys(name, limit=50),
        "template": template,
        "runtime_unavailable": space.runtime_unavailable,
        "work": [job for job in p.queries.jobs(name) if not job.state.finished],
        "ready_history": p.queries.ready_history(space.template),
    }


@router.post("/spaces/{name}/extend")
def extend(
    request: Request,
    name: str,
    who: ViewerDep,
    by: Annotated[str, Form()] = "1h",
    custom: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, csrf)
    return _act(
        request,
        name,
        "extend",
        lambda: portal(request).requests.extend(name, by=custom.strip() or by, actor=who),
    )


@router.get("/spaces/{name}/delete")
def confirm_delete(request: Request, name: str, who: ViewerDep) -> HTMLResponse:
    space = portal(request).queries.space(name)
    if not views.can_modify(who, space.owner, space.team):
        raise Forbidden(f"{who.name} may not delete space {name!r}: it belongs to {space.owner}")
    return render(request, "confirm_delete.html", {"space": space})


# The buttons that take nothing but the space: each the request of the same name.
ACTIONS = ("sleep", "wake", "retry", "recreate", "delete")


@router.post("/spaces/{name}/{action}")
def act(
    request: Request, name: str, action: str, who: ViewerDep, csrf: Annotated[str, Form()] = ""
) -> Response:
    if action not in ACTIONS:
        raise NotFound(f"a space has no action {action!r}")
    check_csrf(request, csrf)
    run = getattr(portal(request).requests, action)
    return _act(request, name, action, lambda: run(name, actor=who))


@router.get("/spaces/{name}/logs/{service}")
def logs_page(request: Request, name: str, service: str, who: ViewerDep) -> HTMLResponse:
    space = portal(request).queries.space(name)
    if service not in [s.name for s in space.services]:
        raise NotFound(f"space {name!r} has no service {service!r}")
    return render(
        request,
        "logs.html",
        {"space": space, "service": service, "lines": _tail(request, name, service)},
    )


@router.get("/spaces/{name}/logs/{service}/tail")
def logs_tail(request: Request, name: str, service: str, who: ViewerDep) -> HTMLResponse:
    return render(request, "_log.html", {"lines": _tail(request, name, service)})


@router.get("/spaces/{name}/logs/{service}/download")
def logs_download(request: Request, name: str, service: str, who: ViewerDep) -> StreamingResponse:
    lines = portal(request).queries.logs(name, service, tail=1_000_000, follow=False)
    disposition = f'attachment; filename="{name}-{service}.log"'
    return StreamingResponse(
        lines, media_type="text/plain; charset=utf-8", headers={"Content-Disposition": disposition}
    )


def _tail(request: Request, name: str, service: str) -> str:
    return "".join(portal(request).queries.logs(name, service, tail=300, follow=False))


# -- templates ---------------------------------------------------------------------------------


# -- the one-click extend link of a notice ----------------------------------------------------
# Opening the link shows what it does; the button does it. A GET never acts: chat apps
# open links to preview them, which would use the link up.


@router.get("/x/{token}")
def extend_link_page(request: Request, token: str) -> HTMLResponse:
    p = portal(request)
    try:
        space = p.notifier.link_space(token)
    except LaunchbayError as e:
        return render(request, "extend_link.html", {"error": e.message}, status=http_status(e))
    by = format_duration(p.notifier.extend_by)
    return render(request, "extend_link.html", {"space": space, "by": by, "token": token})


@router.post("/x/{token}")
def extend_by_link(request: Request, token: str) -> HTMLResponse:
    try:
        space = portal(request).notifier.extend_by_link(token)
    except LaunchbayError as e:
        return render(request, "extend_link.html", {"error": e.message}, status=http_status(e))
    return render(request, "extend_link.html", {"space": space, "extended": True})


@router.get("/templates")
def templates_page(request: Request, who: ViewerDep) -> HTMLResponse:
    p = portal(request)
    templates = p.queries.templates()
    return render(
        request,
        "templates.html",
        {
            "templates": templates,
            "runtimes_of": {t.name: p.queries.runtimes_for(t) for t in templates},
            "problems": p.queries.template_problems(),
        },
    )


@router.get("/fragments/check-name", response_class=PlainTextResponse)
def check_name(request: Request, who: ViewerDep, name: str = "") -> HTMLResponse:
    """Validation as you type, with the same rules as the API."""
    message, ok = "", False
    try:
        parse_space_name(name)
        taken = _exists(request, name)
        message, ok = (
            (f"a space named {name!r} already exists", False) if taken else ("available", True)
        )
    except Invalid as e:
        message = e.message
    return render(request, "_field_check.html", {"message": message, "ok": ok})


def _exists(request: Request, name: str) -> bool:
    try:
        return views.is_live(portal(request).queries.space(name).phase)
    except NotFound:
        return False


def _create_from_form(request: Request, who: Actor, values: dict[str, str]) -> Response:
    p = portal(request)
    errors: dict[str, str] = {}
    name, template_name = values.get("name", "").strip(), values.get("template", "")
    try:
        template = p.queries.template(template_name)
    except NotFound as e:
        return _new_form(
            request, template_name, values=values, errors={"template": e.message}, status=422
        )
    try:
        parse_space_name(name)
    except Invalid as e:
        errors["name"] = e.message
    ttl = values.get("ttl", "").strip() or None
    try:
        choose_ttl(template.ttl, ttl)
    except Invalid as e:
        errors["ttl"] = e.message
    params = {
        k.removeprefix("param."): v
        for k, v in values.items()
        if k.startswith("param.") and v.strip()
    }
    sets = {
        f"{k.removeprefix('version.')}.version": v.strip()
        for k, v in values.items()
        if k.startswith("version.") and v.strip()
    }
    if not errors:
        try:
            p.requests.create(
                CreateSpace(
                    name=name,
                    template=template.name,
                    runtime=values.get("runtime") or None,
                    ttl=ttl,
                    params=params,
                    sets=sets,
                ),
                actor=who,
            )
            return RedirectResponse(f"/spaces/{name}", status_code=303)
        except Conflict as e:
            errors["name"] = e.message
        except LaunchbayError as e:
            errors["form"] = e.message
    return _new_form(request, template.name, values=values, errors=errors, status=422)
