"""API keys: a user makes, lists, rotates and revokes their own; an admin those of anyone.
A key is shown once and stored as a digest; revoking deletes it, so it stops at once."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from launchbay.domain.auth import (
    Actor,
    Key,
    Scope,
    new_token,
    parse_repository,
    parse_scopes,
    require_admin,
    token_digest,
)
from launchbay.domain.durations import format_duration, parse_duration
from launchbay.domain.errors import Forbidden, Invalid, NotFound
from launchbay.domain.names import parse_key_name, parse_template_name, parse_user_name
from launchbay.engine.engine import Clock
from launchbay.store import queries as q
from launchbay.store.db import Store
from launchbay.store.models import Token, User

log = logging.getLogger(__name__)

DEFAULT_MAX_LIFE = timedelta(days=90)


@dataclass(frozen=True)
class KeyView:
    name: str
    user: str
    scopes: tuple[str, ...]
    templates: tuple[str, ...]
    repositories: tuple[str, ...]
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    current: bool  # the key the request came with


@dataclass(frozen=True)
class NewKey:
    name: str
    scopes: Sequence[str]
    expires_in: str
    templates: Sequence[str] = ()
    repositories: Sequence[str] = ()


def key_of(token: Token) -> Key:
    scopes = frozenset(Scope(s) for s in token.scopes)
    return Key(
        name=token.name,
        scopes=scopes,
        templates=frozenset(token.templates),
        repositories=frozenset(token.repositories),
        expires_at=token.expires_at,
        whole=not token.templates
        and not token.repositories
        and Scope.SPACES in scopes
        and (Scope.ADMIN in scopes or not token.user.is_admin),
    )


class Keys:
    def __init__(self, store: Store, *, clock: Clock, max_life: timedelta = DEFAULT_MAX_LIFE):
        self.store = store
        self.clock = clock
        self.max_life = max_life

    def create(self, new: NewKey, *, actor: Actor, user: str | None = None) -> tuple[KeyView, str]:
        """A new key of `user` (default: the actor) and its token, shown once."""
        now = self.clock()
        key = self._checked(new, now=now)
        self._may_grant(actor, key)
        token = new_token()
        with self.store.write() as s:
            owner = self._user(s, actor, user)
            row = q.add_token(
                s,
                user=owner,
                digest=token_digest(token),
                now=now,
                name=key.name,
                scopes=[x.value for x in key.scopes],
                templates=sorted(key.templates),
                repositories=sorted(key.repositories),
                expires_at=key.expires_at,
            )
            view = self._view(row, actor)
        log.info("key %s of %s made by %s", key.name, owner.name, actor.name)
        return view, token

    def list(self, *, actor: Actor, user: str | None = None) -> list[KeyView]:
        with self.store.read() as s:
            owner = self._user(s, actor, user)
            return [self._view(row, actor) for row in q.tokens_of(s, owner)]

    def revoke(self, name: str, *, actor: Actor, user: str | None = None) -> KeyView:
        with self.store.write() as s:
            owner = self._user(s, actor, user)
            row = self._named(s, owner, name)
            view = self._view(row, actor)
            s.delete(row)
        log.info("key %s of %s revoked by %s", name, owner.name, actor.name)
        return view

    def rotate(self, name: str, *, actor: Actor, user: str | None = None) -> tuple[KeyView, str]:
        """A new secret for the key, with its limits and a life as long as it had (at most
        the server's maximum); the old secret stops at once."""
        now = self.clock()
        token = new_token()
        with self.store.write() as s:
            owner = self._user(s, actor, user)
            row = self._named(s, owner, name)
            life = (row.expires_at - row.created_at) if row.expires_at else self.max_life
            rotated = replace(key_of(row), expires_at=now + min(life, self.max_life))
            self._may_grant(actor, rotated)
            row.digest, row.created_at = token_digest(token), now
            row.expires_at = rotated.expires_at
            row.last_used_at = None
            view = self._view(row, actor)
        log.info("key %s of %s rotated by %s", name, owner.name, actor.name)
        return view, token

    # -- helpers -------------------------------------------------------------------------

    def _checked(self, new: NewKey, *, now: datetime) -> Key:
        life = parse_duration(new.expires_in)
        if life > self.max_life:
            raise Invalid(
                f"a key lives at most {format_duration(self.max_life)} on this server "
                f"(auth.key_max_life); ask for less than {new.expires_in}"
            )
        return Key(
            name=parse_key_name(new.name),
            scopes=parse_scopes(new.scopes),
            templates=frozenset(parse_template_name(t) for t in new.templates),
            repositories=frozenset(parse_repository(r) for r in new.repositories),
            expires_at=now + life,
        )

    @staticmethod
    def _may_grant(actor: Actor, key: Key) -> None:
        if Scope.ADMIN in key.scopes:
            require_admin(actor, action="make a key of the admin scope")
        if actor.key is not None and not actor.key.covers(key):
            raise Forbidden(
                f"key {actor.key.name!r} may not make a key that may do more than it: "
                "more scopes, fewer limits or a later expiry"
            )

    @staticmethod
    def _user(s: Session, actor: Actor, user: str | None) -> User:
        name = actor.name if user is None else parse_user_name(user)
        if name != actor.name:
            require_admin(actor, action="manage another user's keys")
        found = q.user_by_name(s, name)
        if found is None:
            raise NotFound(f"no user named {name!r}")
        return found

    @staticmethod
    def _named(s: Session, owner: User, name: str) -> Token:
        row = q.token_named(s, owner, parse_key_name(name))
        if row is None:
            raise NotFound(f"{owner.name} has no key named {name!r}: see `bay auth token list`")
        return row

    @staticmethod
    def _view(row: Token, actor: Actor) -> KeyView:
        return KeyView(
            name=row.name,
            user=row.user.name,
            scopes=tuple(row.scopes),
            templates=tuple(row.templates),
            repositories=tuple(row.repositories),
            created_at=row.created_at,
            expires_at=row.expires_at,
            last_used_at=row.last_used_at,
            current=actor.key is not None
            and actor.key.name == row.name
            and actor.name == row.user.name,
        )
