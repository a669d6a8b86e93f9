"""Users, their tokens and one-time sign-in links, and the installation's id. Tokens and
links are shown once and stored only as digests."""

from __future__ import annotations

import logging
import os
import secrets
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy.orm import Session

from launchbay.domain.auth import (
    Actor,
    Scope,
    new_token,
    require_admin,
    require_whole_key,
    token_digest,
)
from launchbay.domain.durations import instant
from launchbay.domain.errors import Conflict, Unauthorized
from launchbay.domain.names import parse_user_name
from launchbay.engine.engine import Clock
from launchbay.engine.keys import DEFAULT_MAX_LIFE, Keys, key_of
from launchbay.engine.teams import Teams, roles_of
from launchbay.store import queries as q
from launchbay.store.db import Store
from launchbay.store.models import SigninLink, Token, User

log = logging.getLogger(__name__)

ADMIN = "admin"
SIGNIN_LINK_LIFE = timedelta(minutes=1)
FIRST_KEY, BOOTSTRAP_KEY = "first", "bootstrap"
ALL_SCOPES = [scope.value for scope in Scope]
LAST_USE_GRAIN = timedelta(minutes=1)


class Accounts:
    def __init__(self, store: Store, *, clock: Clock, key_max_life: timedelta = DEFAULT_MAX_LIFE):
        self.store = store
        self.clock = clock
        self.keys = Keys(store, clock=clock, max_life=key_max_life)
        self.teams = Teams(store, clock=clock)

    def authenticate(self, token: str | None) -> Actor:
        """The user and key a bearer token stands for: Unauthorized for no token, one that
        is not known (never made, or revoked) and one past its expiry."""
        if not token:
            raise Unauthorized("missing token: send 'Authorization: Bearer <token>'")
        now = self.clock()
        with self.store.read() as s:
            row = q.token_by_digest(s, token_digest(token))
            if row is None:
                raise Unauthorized("invalid token: it was never made, or it was revoked")
            key, user, used = key_of(row), row.user, row.last_used_at
            teams = roles_of(s, user.id)
        if key.expires_at is not None and key.expires_at <= now:
            raise Unauthorized(
                f"key {key.name!r} of {user.name} expired at {instant(key.expires_at)}: "
                f"rotate it (`bay auth token rotate {key.name}`) or make a new one"
            )
        if used is None or now - used > LAST_USE_GRAIN:
            self._used(row.id, now)
        admin = user.is_admin and Scope.ADMIN in key.scopes
        return Actor(name=user.name, is_admin=admin, key=key, teams=teams)

    def _used(self, token_id: int, now: datetime) -> None:
        """Record a key's last use, once a minute at most (not a write per request)."""
        with self.store.write() as s:
            row = s.get(Token, token_id)
            if row is not None:
                row.last_used_at = now

    def by_name(self, name: str) -> Actor | None:
        """The user of that name, for sessions that carry a name instead of a token."""
        with self.store.read() as s:
            user = q.user_by_name(s, name)
            return _actor(s, user) if user else None

    def create_user(self, name: str, *, admin: bool, actor: Actor) -> str:
        """A new user and their first token, which is returned once and never stored."""
        require_admin(actor, action="create users")
        user_name = parse_user_name(name)
        now = self.clock()
        with self.store.write() as s:
            user = q.add_user(s, name=user_name, is_admin=admin, now=now)
            token = _whole_key(s, user, FIRST_KEY, now=now, expires_at=now + self.keys.max_life)
        log.info("user %s created by %s%s", user_name, actor.name, " (admin)" if admin else "")
        return token

    def bootstrap(self, token_file: Path) -> bool:
        """On a store with no user, create the admin and write its token to `token_file`
        (mode 0600). True if it did; a store with users is left alone."""
        now = self.clock()
        with self.store.write() as s:
            if q.count_users(s) > 0:
                return False
            try:
                user = q.add_user(s, name=ADMIN, is_admin=True, now=now)
            except Conflict:
                return False  # another replica, starting at the same moment, made it
            # The server's own admin token never expires: it is the way in when every other
            # key has; whoever can read the data dir owns the server anyway.
            token = _whole_key(s, user, BOOTSTRAP_KEY, now=now, expires_at=None)
            token_file.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(token + "\n")
            token_file.chmod(0o600)
        return True

    def installation(self) -> str:
        """The installation's id, made at its first start and the same for every replica."""
        with self.store.write() as s:
            try:
                return q.installation(s, new=secrets.token_hex(3), now=self.clock())
            except Conflict:
                pass
        with self.store.write() as s:
            return q.installation(s, new="", now=self.clock())

    def signin_link(self, actor: Actor) -> str:
        """A token that signs `actor` in to the portal once, within a minute (the link
        `bay server` prints and `bay portal` opens)."""
        require_whole_key(actor, action="open a portal session")
        token = secrets.token_urlsafe(32)
        now = self.clock()
        with self.store.write() as s:
            user = q.user_by_name(s, actor.name)
            if user is None:
                raise Unauthorized(f"no user named {actor.name!r}")
            s.add(
                SigninLink(
                    digest=token_digest(token), user_id=user.id, valid_until=now + SIGNIN_LINK_LIFE
                )
            )
        return token

    def redeem_signin_link(self, token: str) -> Actor:
        """The user a sign-in link was made for, spending it; Unauthorized once used, after
        its minute, or for a token never made."""
        now = self.clock()
        with self.store.write() as s:
            link = s.get(SigninLink, token_digest(token), with_for_update=True)
            if link is None:
                raise Unauthorized("this sign-in link is not known: ask for a new one")
            if link.used_at is not None:
                raise Unauthorized("this sign-in link was used already: ask for a new one")
            if link.valid_until < now:
                raise Unauthorized("this sign-in link has expired (a link is good for a minute)")
            link.used_at = now
            user = s.get(User, link.user_id)
            assert user is not None  # the link goes with its user (on delete cascade)
            return _actor(s, user)


def _whole_key(
    s: Session, user: User, name: str, *, now: datetime, expires_at: datetime | None
) -> str:
    """A key with every scope and no limit, for a new user; its token, shown once."""
    token = new_token()
    q.add_token(
        s,
        user=user,
        digest=token_digest(token),
        now=now,
        name=name,
        scopes=ALL_SCOPES,
        expires_at=expires_at,
    )
    return token


def _actor(s: Session, user: User) -> Actor:
    """A user signed in without a key (a portal session): their whole powers."""
    return Actor(name=user.name, is_admin=user.is_admin, teams=roles_of(s, user.id))
