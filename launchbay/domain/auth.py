"""Who may do what to a space."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from launchbay.domain.errors import Forbidden


@dataclass(frozen=True)
class Actor:
    """The user (or the engine itself) on whose behalf something happens."""

    name: str
    is_admin: bool = False


SYSTEM = Actor(name="launchbay", is_admin=True)


def may_change(actor: Actor | None, *, owner: str) -> bool:
    """The one rule for changing a space: its owner or an admin. Everything that changes a
    space (engine requests, the portal's buttons) asks this."""
    return actor is not None and (actor.is_admin or actor.name == owner)


def require_owner_or_admin(actor: Actor, *, owner: str, space: str, action: str) -> None:
    if not may_change(actor, owner=owner):
        raise Forbidden(f"{actor.name} may not {action} space {space!r}: it belongs to {owner}")


def require_admin(actor: Actor, *, action: str) -> None:
    if not actor.is_admin:
        raise Forbidden(f"only an admin may {action}")


def new_token() -> str:
    """A bearer token: 256 random bits, URL-safe, with a prefix that secret scanners can spot."""
    return "lb_" + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
