"""Who may do what to a space: the one rule, and what an API key narrows it to."""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from launchbay.domain.errors import Forbidden, Invalid


class Action(StrEnum):
    """What a request does to a space (or, for ADMIN, to the server)."""

    READ = "read"
    CREATE = "create"
    DEPLOY = "deploy"
    CHANGE = "change"  # sleep, wake, extend, retry, recreate
    DELETE = "delete"
    ADMIN = "admin"


class Role(StrEnum):
    """A user's role in a team: viewers see, members create and manage their own spaces,
    admins manage the team's spaces and members."""

    VIEWER = "viewer"
    MEMBER = "member"
    ADMIN = "admin"


class Scope(StrEnum):
    """What a key may be used for. Every scope reads; `admin` counts only for an admin."""

    READ = "read"
    DEPLOY = "deploy"
    SPACES = "spaces"
    ADMIN = "admin"


GRANTS: dict[Scope, frozenset[Action]] = {
    Scope.READ: frozenset({Action.READ}),
    Scope.DEPLOY: frozenset({Action.READ, Action.DEPLOY}),
    Scope.SPACES: frozenset(set(Action) - {Action.ADMIN}),
    Scope.ADMIN: frozenset(Action),
}

_REPOSITORY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}/[A-Za-z0-9._-]{1,100}$")


@dataclass(frozen=True)
class Key:
    """The API key a request came with: its name and what it is limited to. An empty
    `templates` or `repositories` is no limit."""

    name: str
    scopes: frozenset[Scope]
    templates: frozenset[str] = frozenset()
    repositories: frozenset[str] = frozenset()
    expires_at: datetime | None = None
    # Whether it carries its user's whole powers (every scope the user can use, no limit):
    # only such a key may open a portal session, which knows no key.
    whole: bool = True

    def grants(self, action: Action) -> bool:
        return any(action in GRANTS[scope] for scope in self.scopes)

    def covers(self, other: Key) -> bool:
        """Whether this key may make `other`: nothing `other` may do is beyond this key."""
        ends, other_ends = self.expires_at, other.expires_at
        return (
            other.scopes <= self.scopes
            and _narrower(other.templates, self.templates)
            and _narrower(other.repositories, self.repositories)
            and (ends is None or (other_ends is not None and other_ends <= ends))
        )


def _narrower(inner: frozenset[str], outer: frozenset[str]) -> bool:
    return not outer or (bool(inner) and inner <= outer)


@dataclass(frozen=True)
class Actor:
    """The user (or the engine itself) on whose behalf something happens; `key` is the API
    key the request came with (None for a portal session, a webhook or the engine: the
    user's whole powers). `is_admin` is false for an admin's key without the admin scope."""

    name: str
    is_admin: bool = False
    key: Key | None = None
    teams: tuple[tuple[str, Role], ...] = ()

    def role_in(self, team: str) -> Role | None:
        return next((role for name, role in self.teams if name == team), None)


SYSTEM = Actor(name="launchbay", is_admin=True)


def may_change(actor: Actor | None, *, owner: str, team: str = "") -> bool:
    """The one rule for changing a space: its owner, an admin of its team, or a server
    admin. Everything that changes a space (engine requests, the portal's buttons) asks."""
    return actor is not None and (
        actor.is_admin or actor.name == owner or bool(team and actor.role_in(team) is Role.ADMIN)
    )


@dataclass(frozen=True)
class SpaceFacts:
    """What the rule asks of a space."""

    name: str
    owner: str
    template: str
    repository: str = ""
    team: str = ""


def require_owner_or_admin(
    actor: Actor, space: SpaceFacts, *, action: str, does: Action = Action.CHANGE
) -> None:
    """May `actor` do `action` (of kind `does`) to the space: its key allows it, and it is
    the owner's or the actor is an admin."""
    require_key_allows(
        actor, does, template=space.template, repository=space.repository, what=action
    )
    if not may_change(actor, owner=space.owner, team=space.team):
        raise Forbidden(
            f"{actor.name} may not {action} space {space.name!r}: it belongs to {space.owner}"
        )


def require_key_allows(
    actor: Actor, does: Action, *, template: str = "", repository: str = "", what: str = ""
) -> None:
    """Forbidden, naming the key and its limit, when the request's key does not allow it."""
    key = actor.key
    if key is None:
        return
    what = what or does.value
    if not key.grants(does):
        scopes = ", ".join(sorted(key.scopes))
        raise Forbidden(
            f"key {key.name!r} may not {what}: its scopes are {scopes}; it needs {_scope_for(does)}"
        )
    if key.templates and template not in key.templates:
        raise Forbidden(
            f"key {key.name!r} may not {what} spaces of template {template!r}: "
            f"it is for {', '.join(sorted(key.templates))} only"
        )
    if key.repositories and repository not in key.repositories:
        of = f"repository {repository!r}" if repository else "no repository"
        raise Forbidden(
            f"key {key.name!r} may not {what} a space of {of}: "
            f"it is for {', '.join(sorted(key.repositories))} only"
        )


def _scope_for(does: Action) -> str:
    return next(scope.value for scope in Scope if does in GRANTS[scope])


def parse_scopes(raw: Iterable[str]) -> frozenset[Scope]:
    scopes = set()
    for one in raw:
        try:
            scopes.add(Scope(one))
        except ValueError:
            known = ", ".join(s.value for s in Scope)
            raise Invalid(f"unknown scope {one!r}: a key's scopes are {known}") from None
    if not scopes:
        raise Invalid("a key needs at least one scope: read, deploy, spaces or admin")
    return frozenset(scopes)


def parse_repository(raw: str) -> str:
    if not _REPOSITORY.match(raw):
        raise Invalid(f"repository {raw!r}: write OWNER/NAME, e.g. acme/payments")
    return raw.lower()


def require_team_role(actor: Actor, team: str, at_least: Role, *, action: str) -> None:
    """A server admin, or a user whose role in `team` is `at_least` or above."""
    order = list(Role)
    role = actor.role_in(team)
    if actor.is_admin or (role is not None and order.index(role) >= order.index(at_least)):
        return
    has = f"is {_a(role)} of it" if role else "is not in it"
    raise Forbidden(
        f"{actor.name} may not {action} in team {team!r}: that takes {_a(at_least)} "
        f"of the team, and {actor.name} {has}"
    )


def _a(role: Role) -> str:
    return f"{'an' if role is Role.ADMIN else 'a'} {role.value}"


def require_whole_key(actor: Actor, *, action: str) -> None:
    """Forbidden for a limited key: a portal session has the user's whole powers, so a key
    that has less may not open one (it would be a way around its own limits)."""
    key = actor.key
    if key is not None and not key.whole:
        raise Forbidden(
            f"key {key.name!r} is limited, so it may not {action}: a portal session has all "
            f"of {actor.name}'s powers; use a key without limits"
        )


def require_admin(actor: Actor, *, action: str) -> None:
    if not actor.is_admin:
        if actor.key is not None and Scope.ADMIN not in actor.key.scopes:
            raise Forbidden(f"only an admin may {action}, with a key of the admin scope")
        raise Forbidden(f"only an admin may {action}")


def new_token() -> str:
    """A bearer token: 256 random bits, URL-safe, with a prefix that secret scanners can spot."""
    return "lb_" + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
