"""Users and their tokens. Tokens are shown once and stored only as digests."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from launchbay.domain.auth import Actor, new_token, require_admin, token_digest
from launchbay.domain.errors import Conflict, Unauthorized
from launchbay.domain.names import parse_user_name
from launchbay.engine.engine import Clock
from launchbay.store import queries as q
from launchbay.store.db import Store

log = logging.getLogger(__name__)

ADMIN = "admin"


class Accounts:
    def __init__(self, store: Store, *, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def authenticate(self, token: str | None) -> Actor:
        if not token:
            raise Unauthorized("missing token: send 'Authorization: Bearer <token>'")
        with self.store.read() as s:
            user = q.user_by_token(s, token_digest(token))
        if user is None:
            raise Unauthorized("invalid token")
        return Actor(name=user.name, is_admin=user.is_admin)

    def by_name(self, name: str) -> Actor | None:
        """The user of that name, for sessions that carry a name instead of a token."""
        with self.store.read() as s:
            user = q.user_by_name(s, name)
        return Actor(name=user.name, is_admin=user.is_admin) if user else None

    def create_user(self, name: str, *, admin: bool, actor: Actor) -> str:
        """A new user and their first token, which is returned once and never stored."""
        require_admin(actor, action="create users")
        user_name = parse_user_name(name)
        token = new_token()
        now = self.clock()
        with self.store.write() as s:
            user = q.add_user(s, name=user_name, is_admin=admin, now=now)
            q.add_token(s, user=user, digest=token_digest(token), now=now)
        log.info("user %s created by %s%s", user_name, actor.name, " (admin)" if admin else "")
        return token

    def bootstrap(self, token_file: Path) -> bool:
        """On a store with no user, create the admin and write its token to `token_file`
        (mode 0600). True if it did; a store with users is left alone."""
        token = new_token()
        now = self.clock()
        with self.store.write() as s:
            if q.count_users(s) > 0:
                return False
            try:
                user = q.add_user(s, name=ADMIN, is_admin=True, now=now)
            except Conflict:
                return False  # another replica, starting at the same moment, made it
            q.add_token(s, user=user, digest=token_digest(token), now=now)
            token_file.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(token + "\n")
            token_file.chmod(0o600)
        return True
