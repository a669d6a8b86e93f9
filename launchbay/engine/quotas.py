"""Quotas: how many spaces a user may have at once. A create over it is refused with the
quota, its value, what uses it and how to free it. Replicas agree: a create locks its
user's row before it counts, so of concurrent creates exactly the allowed number win."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from launchbay.domain.auth import Actor, require_admin
from launchbay.domain.errors import Forbidden, NotFound, OverQuota
from launchbay.domain.names import parse_user_name
from launchbay.domain.phases import Phase
from launchbay.engine.engine import Clock
from launchbay.store.db import Store
from launchbay.store.models import Quota, Space, User

USER = "user"


@dataclass(frozen=True)
class QuotaSettings:
    """The server's defaults (`quotas:` in the settings)."""

    spaces_per_user: int | None = None  # None: no limit
    exempt_templates: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Usage:
    user: str
    spaces: int | None  # the limit; None: none
    set_by_admin: bool  # False: the server's default
    exempt: bool
    using: tuple[str, ...]  # the live spaces that count, oldest first


class Quotas:
    def __init__(self, store: Store, *, clock: Clock, settings: QuotaSettings) -> None:
        self.store = store
        self.clock = clock
        self.settings = settings

    def admit_create(self, s: Session, actor: Actor, *, template: str) -> None:
        """In the create's transaction: OverQuota if `actor` may not have one more space.
        Locks the user's row first, so concurrent creates by one user count in turn."""
        if template in self.settings.exempt_templates:
            return
        user = s.scalar(select(User).where(User.name == actor.name).with_for_update())
        if user is None:
            return  # the engine's own actors (a pull request's worker) are not users
        usage = self._usage(s, actor.name)
        if usage.exempt or usage.spaces is None or len(usage.using) < usage.spaces:
            return
        which = "set by an admin" if usage.set_by_admin else "the server's default"
        shown = ", ".join(usage.using[:10]) + (" ..." if len(usage.using) > 10 else "")
        raise OverQuota(
            f"{actor.name} may have at most {usage.spaces} spaces at once (quota 'spaces', "
            f"{which}) and has {len(usage.using)}: {shown or 'none'}; delete one "
            "(`bay space delete NAME`) or ask an admin to raise it (`bay quota set`)"
        )

    def usage(self, name: str, *, viewer: Actor) -> Usage:
        user = parse_user_name(name)
        if user != viewer.name and not viewer.is_admin:
            raise Forbidden(f"{viewer.name} may not read the quotas of {user}")
        with self.store.read() as s:
            if s.scalar(select(User.id).where(User.name == user)) is None:
                raise NotFound(f"no user named {user!r}")
            return self._usage(s, user)

    def set(self, name: str, *, spaces: int | None, exempt: bool, actor: Actor) -> Usage:
        """An admin sets a user's quota (None: back to the server's default). One below
        what the user has now is taken: their creates are refused until they are under."""
        require_admin(actor, action="set quotas")
        user = parse_user_name(name)
        with self.store.write() as s:
            if s.scalar(select(User.id).where(User.name == user)) is None:
                raise NotFound(f"no user named {user!r}")
            row = s.get(Quota, (USER, user), with_for_update=True)
            if row is None:
                row = Quota(subject=USER, name=user, updated_at=self.clock())
                s.add(row)
            row.spaces, row.exempt, row.updated_at = spaces, exempt, self.clock()
            s.flush()
            return self._usage(s, user)

    def _usage(self, s: Session, user: str) -> Usage:
        row = s.get(Quota, (USER, user))
        using = s.scalars(
            select(Space.name)
            .where(Space.owner == user, Space.live_name.is_not(None))
            .where(Space.phase != Phase.DELETING)
            .order_by(Space.id)
        ).all()
        set_by_admin = row is not None and row.spaces is not None
        return Usage(
            user=user,
            spaces=row.spaces
            if row is not None and set_by_admin
            else self.settings.spaces_per_user,
            set_by_admin=set_by_admin,
            exempt=bool(row and row.exempt),
            using=tuple(using),
        )
