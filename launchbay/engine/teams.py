"""Teams: a server admin makes and removes them; a team's admins (and server admins) set
who is in it and with which role. A space belongs to a team, whose admins manage it."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from launchbay.domain.auth import Actor, Role, require_admin, require_team_role
from launchbay.domain.errors import Conflict, Invalid, NotFound
from launchbay.domain.names import parse_team_name, parse_user_name
from launchbay.domain.phases import Phase
from launchbay.engine.engine import Clock
from launchbay.store.db import Store
from launchbay.store.models import Membership, Space, Team, User

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TeamView:
    name: str
    members: tuple[tuple[str, str], ...]  # (user, role), by name
    spaces: int  # live spaces that belong to it
    my_role: str | None


def roles_of(s: Session, user_id: int) -> tuple[tuple[str, Role], ...]:
    """The user's teams and role in each, for their Actor."""
    rows = s.execute(
        select(Team.name, Membership.role)
        .join(Membership, Membership.team_id == Team.id)
        .where(Membership.user_id == user_id)
        .order_by(Team.name)
    ).all()
    return tuple((name, Role(role)) for name, role in rows)


def parse_role(raw: str) -> Role:
    try:
        return Role(raw)
    except ValueError:
        raise Invalid(f"unknown role {raw!r}: a team role is viewer, member or admin") from None


def team_for_create(s: Session, actor: Actor, asked: str) -> str:
    """The team a new space belongs to: the one asked for (the actor must be a member or
    admin of it), else the actor's one team where they are a member or admin, else none."""
    if asked:
        team = parse_team_name(asked)
        if s.scalar(select(Team.id).where(Team.name == team)) is None:
            raise NotFound(f"no team named {team!r}")
        require_team_role(actor, team, Role.MEMBER, action="create spaces")
        return team
    theirs = [name for name, role in actor.teams if role is not Role.VIEWER]
    return theirs[0] if len(theirs) == 1 else ""


class Teams:
    def __init__(self, store: Store, *, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def create(self, name: str, *, actor: Actor) -> TeamView:
        require_admin(actor, action="make teams")
        team = parse_team_name(name)
        with self.store.write() as s:
            if s.scalar(select(Team.id).where(Team.name == team)) is not None:
                raise Conflict(f"team {team!r} exists already")
            s.add(Team(name=team, created_at=self.clock()))
            s.flush()
            view = self._view(s, self._team(s, team), actor)
        log.info("team %s made by %s", team, actor.name)
        return view

    def list(self, *, actor: Actor) -> list[TeamView]:
        with self.store.read() as s:
            return [self._view(s, t, actor) for t in s.scalars(select(Team).order_by(Team.name))]

    def show(self, name: str, *, actor: Actor) -> TeamView:
        with self.store.read() as s:
            return self._view(s, self._team(s, parse_team_name(name)), actor)

    def set_member(self, name: str, user: str, role: str, *, actor: Actor) -> TeamView:
        """Add `user` to the team with `role`, or change their role."""
        wanted = parse_role(role)
        with self.store.write() as s:
            team = self._team(s, parse_team_name(name))
            require_team_role(actor, team.name, Role.ADMIN, action="set members' roles")
            member = self._user(s, user)
            row = s.get(Membership, (team.id, member.id), with_for_update=True)
            if row is None:
                s.add(Membership(team_id=team.id, user_id=member.id, role=wanted))
            else:
                row.role = wanted
            s.flush()
            return self._view(s, team, actor)

    def remove_member(self, name: str, user: str, *, actor: Actor) -> TeamView:
        with self.store.write() as s:
            team = self._team(s, parse_team_name(name))
            require_team_role(actor, team.name, Role.ADMIN, action="remove members")
            member = self._user(s, user)
            row = s.get(Membership, (team.id, member.id))
            if row is None:
                raise NotFound(f"{member.name} is not in team {team.name!r}")
            s.delete(row)
            s.flush()
            return self._view(s, team, actor)

    def delete(self, name: str, *, actor: Actor) -> None:
        """Remove a team that owns no live space (delete them first, or it is refused)."""
        require_admin(actor, action="remove teams")
        with self.store.write() as s:
            team = self._team(s, parse_team_name(name))
            owned = self._spaces(s, team.name)
            if owned:
                shown = ", ".join(owned[:10]) + (" ..." if len(owned) > 10 else "")
                raise Conflict(
                    f"team {team.name!r} owns {len(owned)} live spaces ({shown}): delete them "
                    "first; nothing was changed"
                )
            s.delete(team)
        log.info("team %s removed by %s", name, actor.name)

    # -- helpers -------------------------------------------------------------------------

    @staticmethod
    def _team(s: Session, name: str) -> Team:
        team = s.scalar(select(Team).where(Team.name == name))
        if team is None:
            raise NotFound(f"no team named {name!r}")
        return team

    @staticmethod
    def _user(s: Session, name: str) -> User:
        user = s.scalar(select(User).where(User.name == parse_user_name(name)))
        if user is None:
            raise NotFound(f"no user named {name!r}")
        return user

    @staticmethod
    def _spaces(s: Session, team: str) -> Sequence[str]:
        return s.scalars(
            select(Space.name)
            .where(Space.team == team, Space.live_name.is_not(None))
            .where(Space.phase != Phase.DELETING)
            .order_by(Space.id)
        ).all()

    def _view(self, s: Session, team: Team, actor: Actor) -> TeamView:
        members = s.execute(
            select(User.name, Membership.role)
            .join(Membership, Membership.user_id == User.id)
            .where(Membership.team_id == team.id)
            .order_by(User.name)
        ).all()
        count = s.scalar(
            select(func.count())
            .select_from(Space)
            .where(Space.team == team.name, Space.live_name.is_not(None))
        )
        role = actor.role_in(team.name)
        return TeamView(
            name=team.name,
            members=tuple((user, Role(r).value) for user, r in members),
            spaces=int(count or 0),
            my_role=role.value if role else None,
        )
