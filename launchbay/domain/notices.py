"""Telling people about their spaces: warnings before expiry, and ready, failed, deleted.

A notice is recorded once per space and key (a warning's key names its offset and the
expiry it warns of, so an extended space is warned again before its new expiry) and sent
to notification channels: Slack-compatible incoming webhooks, and generic JSON webhooks
signed as Standard Webhooks are (`webhook-id`, `webhook-timestamp`, `webhook-signature:
v1,<base64 HMAC-SHA256 of "id.timestamp.body">`). Pure: no I/O here.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import posixpath
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from launchbay.domain.durations import format_duration, instant, parse_duration
from launchbay.domain.errors import Invalid

URL_PATTERN = r"^https?://[^\s]+$"


class NoticeKind(StrEnum):
    WARNING = "warning"
    READY = "ready"
    FAILED = "failed"
    DELETED = "deleted"


class ChannelConfig(BaseModel):
    """Where notices go: `slack` (an incoming webhook) or `json` (signed with `secret`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["slack", "json"]
    url: str = Field(pattern=URL_PATTERN, max_length=2000)
    secret_env: str | None = Field(default=None, description="JSON: env variable with the key")
    secret_file: str | None = Field(default=None, description="JSON: file with the signing key")


class NotifyConfig(BaseModel):
    """The `notifications:` part of the server's config file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    channels: list[ChannelConfig] = Field(default_factory=list)
    warn_before: list[str] = Field(
        default_factory=lambda: ["24h", "1h", "10m"],
        description="warn this long before a space expires, once each",
    )
    extend_by: str = Field(default="1h", description="how much a notice's extend link adds")
    public_url: str | None = Field(
        default=None, pattern=URL_PATTERN, description="the server as people reach it"
    )
    user_urls: list[str] = Field(
        default_factory=lambda: ["https://hooks.slack.com/"],
        description="URL prefixes users may send their own notices to",
    )
    keep_ended: str = Field(default="24h", description="how long ended spaces stay listed")

    @field_validator("warn_before", "extend_by", "keep_ended")
    @classmethod
    def _durations(cls, value: Any) -> Any:
        for text in value if isinstance(value, list) else [value]:
            parse_duration(text)
        return value

    def offsets(self) -> tuple[timedelta, ...]:
        return tuple(sorted({parse_duration(t) for t in self.warn_before}, reverse=True))


@dataclass(frozen=True)
class Channel:
    kind: Literal["slack", "json"]
    url: str
    secret: bytes = b""
    owner: str | None = None  # None: the server's, told of every space


def check_user_url(url: str, allowed: list[str]) -> None:
    """A user's channel may only point where the server's config allows: a shared server
    must not be made to send requests into its own network. Each allowed prefix is matched
    as a URL (scheme, host and port equal, the path under its path), never as text, so
    `https://hooks.slack.com.evil.example/` is not under `https://hooks.slack.com`."""
    if not any(_under(url, prefix) for prefix in allowed):
        shown = ", ".join(allowed) or "nowhere (notifications.user_urls is empty)"
        raise Invalid(f"channel URL {url[:100]!r} is not allowed here: it must start with {shown}")


def _under(url: str, prefix: str) -> bool:
    try:
        got, want = urlsplit(url), urlsplit(prefix)
        ports = got.port, want.port
    except ValueError:
        return False
    return (
        got.scheme == want.scheme
        and got.hostname is not None
        and got.hostname == want.hostname
        and ports[0] == ports[1]
        and not got.username
        and _effective_path(got.path).startswith(want.path.rstrip("/") + "/")
    )


def _effective_path(path: str) -> str:
    """The path a receiver serves: percent-decoded (`%2e%2e`, `%2f`), backslashes as
    slashes, dot segments resolved. `/hook/../admin/` is `/admin/`, not under `/hook/`."""
    decoded = unquote(unquote(path)).replace("\\", "/")
    resolved = posixpath.normpath(decoded or "/")
    return resolved + ("/" if decoded.endswith("/") and resolved != "/" else "")


def warning_due(
    *,
    created_at: datetime,
    expires_at: datetime,
    now: datetime,
    offsets: tuple[timedelta, ...],
) -> timedelta | None:
    """The warning to send now, if one is due: the smallest offset whose moment has come
    (`expires_at - offset <= now`). An offset longer than the space's life is never due,
    so a two-hour space gets no 24-hour warning; offsets missed (a server that was down)
    are folded into the one sent."""
    if now >= expires_at:
        return None
    due = [o for o in offsets if expires_at - o <= now and expires_at - o > created_at]
    return min(due) if due else None


def warning_key(offset: timedelta, expires_at: datetime) -> str:
    return f"warning:{format_duration(offset)}:{instant(expires_at)}"


@dataclass(frozen=True)
class Notice:
    """What a channel is told."""

    kind: NoticeKind
    space: str
    owner: str
    template: str
    text: str
    url: str
    expires_at: datetime
    reason: str = ""
    extend_url: str = ""
    extend_by: str = ""

    def json(self) -> dict[str, Any]:
        return {
            "type": f"space.{self.kind}",
            "space": {
                "name": self.space,
                "owner": self.owner,
                "template": self.template,
                "url": self.url,
                "expires_at": instant(self.expires_at),
            },
            "text": f"{self.space} {self.text}",
            "reason": self.reason,
            "extend": {"url": self.extend_url, "by": self.extend_by} if self.extend_url else None,
        }

    def slack(self) -> dict[str, Any]:
        """Slack's incoming-webhook message: its `text` in mrkdwn, links as <url|label>."""
        text = f"<{self.url}|{_escape(self.space)}>: {_escape(self.text)}"
        if self.extend_url:
            text += f"\n<{self.extend_url}|Extend by {self.extend_by}>"
        return {"text": text}


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


KEY_PREFIX = "whsec_"


def new_key() -> str:
    """A signing key as Standard Webhooks writes them: `whsec_` and base64 of 24 random
    bytes (what its libraries take as they are)."""
    return KEY_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def key_bytes(key: str) -> bytes:
    """The bytes a key signs with: a `whsec_` key is base64 of them; any other text is
    used as it is (a key an admin wrote into a file)."""
    if key.startswith(KEY_PREFIX):
        try:
            return base64.b64decode(key.removeprefix(KEY_PREFIX), validate=True)
        except ValueError as e:
            raise Invalid(f"a {KEY_PREFIX} key must be base64: {e}") from e
    return key.encode()


def sign(secret: bytes, *, message_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header of Standard Webhooks."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def text_of(kind: NoticeKind, *, left: timedelta | None = None, reason: str = "") -> str:
    if kind is NoticeKind.WARNING:
        return f"expires in {format_duration(left or timedelta(0))}, then it is deleted"
    if kind is NoticeKind.READY:
        return "is ready"
    if kind is NoticeKind.FAILED:
        return f"failed: {reason.splitlines()[0] if reason else 'see its page'}"
    return f"was deleted ({reason or 'no reason given'})"
