"""What every request and response passes through: the Host header check (DNS rebinding),
the size limit of request bodies, and the security headers of every page."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from launchbay.domain.hosts import host_name

PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors 'none'"
)
HEADERS = {
    b"x-content-type-options": b"nosniff",
    b"referrer-policy": b"same-origin",
    b"x-frame-options": b"DENY",
}


DEFAULT_MAX_BODY = 1024 * 1024
# Paths that hold their bodies to a limit of their own (GitHub sends up to 25 MB).
OWN_LIMITS = ("/api/v1/webhooks/",)


class Guard:
    """Refuses a Host the server does not answer to (400) and a body over `max_body` bytes
    (413, read no further), before any route runs; adds nosniff, a referrer policy, frame
    denial and a Content-Security-Policy to responses that do not set their own."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        allowed_hosts: frozenset[str] | None,
        max_body: int = DEFAULT_MAX_BODY,
    ) -> None:
        self.app = app
        self.allowed = allowed_hosts
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host = dict(scope["headers"]).get(b"host", b"").decode("latin-1")
        if self.allowed is not None and host_name(host) not in self.allowed:
            detail = (
                f"this server does not answer to the host {host_name(host)[:100]!r}; "
                "its admin can add it with --allowed-host"
            )
            await _refuse(send, 400, detail)
            return
        if not str(scope.get("path", "")).startswith(OWN_LIMITS):
            limited = await self._limited(scope, receive, send)
            if limited is None:
                return
            receive = limited

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                extra = dict(HEADERS)
                if b"content-security-policy" not in present:
                    extra[b"content-security-policy"] = PAGE_POLICY.encode()
                headers += [(k, v) for k, v in extra.items() if k not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)

    async def _limited(self, scope: Scope, receive: Receive, send: Send) -> Receive | None:
        """The body, read here up to the limit and handed on; None once refused."""
        too_large = f"the request body is over the limit of {self.max_body:,} bytes"
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_body:
            await _refuse(send, 413, too_large)
            return None
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return _replay([message], receive)
            size += len(message.get("body", b""))
            if size > self.max_body:
                await _refuse(send, 413, too_large)
                return None
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                body = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
                return _replay([body], receive)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    async def replay() -> Message:
        return messages.pop(0) if messages else await receive()

    return replay


async def _refuse(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), *HEADERS.items()],
        }
    )
    await send({"type": "http.response.body", "body": body})
