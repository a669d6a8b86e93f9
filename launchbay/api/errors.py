"""The one place that maps errors to HTTP (as Starlette does, by exception class)."""

from __future__ import annotations

import html
import logging
from collections.abc import Mapping
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from launchbay.api.follows import TooManyFollows
from launchbay.domain.errors import HTTP_STATUS, LaunchbayError, Unauthorized, http_status

log = logging.getLogger(__name__)

STATUS: dict[type[LaunchbayError], int] = {TooManyFollows: 429, **HTTP_STATUS}


def status_of(error: LaunchbayError) -> int:
    return http_status(error, STATUS)


def install(app: FastAPI) -> None:
    @app.exception_handler(LaunchbayError)
    async def _launchbay(request: Request, error: LaunchbayError) -> Response:
        status = status_of(error)
        challenge = error.challenge if isinstance(error, Unauthorized) else None
        headers = {"WWW-Authenticate": challenge} if challenge and _is_api(request) else None
        return respond(request, error.message, status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, error: RequestValidationError) -> Response:
        return respond(request, describe_validation(error), 422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException) -> Response:
        headers = error.headers
        if error.status_code == 405:
            headers = {"Allow": ", ".join(_methods_at(request))}
        return respond(request, str(error.detail), error.status_code, headers=headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> Response:
        log.exception("%s %s failed unexpectedly", request.method, request.url.path)
        return respond(request, "internal error; the server log has the details", 500)


def _methods_at(request: Request) -> list[str]:
    """Every method some route answers at this path. Starlette's own 405 names only the
    methods of the first route that matched the path, and FastAPI makes one route a method."""
    methods: set[str] = set()
    for route in request.app.routes:
        match, _ = route.matches({**request.scope, "method": "\0"})
        if match is not Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods)


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def respond(
    request: Request, message: str, status: int, *, headers: Mapping[str, str] | None = None
) -> Response:
    """JSON for the API; for the portal an HTML page, or a fragment for an htmx request."""
    if _is_api(request):
        return JSONResponse({"detail": message}, status_code=status, headers=headers)
    text = html.escape(message)
    if request.headers.get("hx-request"):
        fragment = f'<div class="error" role="alert">{text}</div>'
        return HTMLResponse(fragment, status_code=status, headers={"HX-Reswap": "none"})
    page_of = getattr(request.app.state, "error_page", None)
    if page_of is not None and status not in (400, 500):  # the portal's layout
        response: Response = page_of(request, status, message)
        if headers:
            response.headers.update(headers)
        return response
    try:
        title = HTTPStatus(status).phrase
    except ValueError:
        title = "Error"
    page = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{status} {title} · Launchbay</title>"
        '<link rel="stylesheet" href="/static/portal.css">'
        f'</head><body><main id="main"><section class="card narrow"><h1>{status} {title}</h1>'
        f'<p role="alert">{text}</p><p><a href="/">Back to all spaces</a></p></section></main>'
        "</body></html>"
    )
    return HTMLResponse(page, status_code=status, headers=headers)


def describe_validation(error: RequestValidationError) -> str:
    parts = []
    for item in error.errors():
        where = ".".join(str(p) for p in item.get("loc", ()) if p != "body")
        message = str(item.get("msg", "invalid")).removeprefix("Value error, ")
        if item.get("type") == "json_invalid":
            message = "the request body is not valid JSON"
        elif item.get("type") == "extra_forbidden":
            message = "unknown field"
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts)
