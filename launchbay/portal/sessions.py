"""Portal sessions and CSRF tokens, signed with the server's session secret.

The session cookie holds the user's name and an expiry, signed with HMAC-SHA256, so any
replica that shares the secret accepts it and nothing is stored per session. The CSRF
token is an HMAC of a random per-browser cookie: a page renders it into its forms, and a
request is accepted only if the form (or the X-CSRF-Token header) carries the token that
matches the browser's cookie, which another site can neither read nor set.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from pathlib import Path

SESSION_COOKIE = "lb_session"
CSRF_COOKIE = "lb_csrf"
SESSION_SECONDS = 12 * 3600


def load_secret(path: Path) -> bytes:
    """LAUNCHBAY_SESSION_SECRET when set (replicas behind one address must share it), else the
    secret in `path` (mode 0600), created on first use."""
    shared = os.environ.get("LAUNCHBAY_SESSION_SECRET", "")
    if shared:
        if len(shared) < 32:
            raise ValueError("LAUNCHBAY_SESSION_SECRET must be at least 32 characters")
        return shared.encode()
    try:
        return bytes.fromhex(path.read_text().strip())
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secret.hex())
    return secret


class Signer:
    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _mac(self, data: bytes) -> str:
        return hmac.new(self._secret, data, hashlib.sha256).hexdigest()

    def session(self, user: str, *, now: float | None = None) -> str:
        payload = json.dumps(
            {"u": user, "exp": int((now or time.time()) + SESSION_SECONDS)}
        ).encode()
        encoded = base64.urlsafe_b64encode(payload).decode().rstrip("=")
        return f"{encoded}.{self._mac(payload)}"

    def user(self, cookie: str | None, *, now: float | None = None) -> str | None:
        """The user a session cookie names, if its signature holds and it has not expired."""
        if not cookie or "." not in cookie:
            return None
        encoded, mac = cookie.rsplit(".", 1)
        try:
            payload = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
            data = json.loads(payload)
        except (ValueError, json.JSONDecodeError):
            return None
        if not hmac.compare_digest(mac, self._mac(payload)) or not isinstance(data, dict):
            return None
        if data.get("exp", 0) < (now or time.time()) or not isinstance(data.get("u"), str):
            return None
        return str(data["u"])

    def csrf_token(self, browser: str) -> str:
        return self._mac(b"csrf:" + browser.encode())

    def csrf_ok(self, browser: str | None, token: str | None) -> bool:
        return bool(browser and token) and hmac.compare_digest(
            self.csrf_token(browser or ""), token or ""
        )


def new_browser_id() -> str:
    return secrets.token_urlsafe(24)
