"""`/api/v1/teams`: teams and their members' roles."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response
from pydantic import BaseModel, Field

from launchbay.api.deps import ActorDep, accounts
from launchbay.api.schemas import ERROR_RESPONSES, LABEL, Body
from launchbay.engine.teams import Teams, TeamView

router = APIRouter(prefix="/api/v1/teams", tags=["teams"], responses=ERROR_RESPONSES)
NameIn = Annotated[str, Path(json_schema_extra=LABEL)]


def teams(request: Request) -> Teams:
    return accounts(request).teams


TeamsDep = Annotated[Teams, Depends(teams)]


class TeamIn(Body):
    name: str = Field(json_schema_extra=LABEL)


class MemberIn(Body):
    role: str = Field(json_schema_extra={"enum": ["viewer", "member", "admin"]})


class MemberOut(BaseModel):
    user: str
    role: str


class TeamOut(BaseModel):
    name: str
    members: list[MemberOut]
    spaces: int = Field(description="its live spaces")
    my_role: str | None = Field(description="the caller's role in it, if any")

    @classmethod
    def of(cls, view: TeamView) -> TeamOut:
        members = [MemberOut(user=user, role=role) for user, role in view.members]
        return cls(name=view.name, members=members, spaces=view.spaces, my_role=view.my_role)


@router.get("", response_model=list[TeamOut])
def list_teams(teams: TeamsDep, caller: ActorDep) -> list[TeamOut]:
    return [TeamOut.of(view) for view in teams.list(actor=caller)]


@router.post("", response_model=TeamOut, status_code=201)
def create_team(body: TeamIn, request: Request, teams: TeamsDep, caller: ActorDep) -> TeamOut:
    """Server admins only."""
    request.state.audit_target = body.name
    return TeamOut.of(teams.create(body.name, actor=caller))


@router.get("/{name}", response_model=TeamOut)
def show_team(name: NameIn, teams: TeamsDep, caller: ActorDep) -> TeamOut:
    return TeamOut.of(teams.show(name, actor=caller))


@router.delete("/{name}", status_code=204)
def delete_team(name: NameIn, teams: TeamsDep, caller: ActorDep) -> Response:
    """Server admins only; refused (409) while the team owns live spaces."""
    teams.delete(name, actor=caller)
    return Response(status_code=204)


@router.put("/{name}/members/{user}", response_model=TeamOut)
def set_member(
    name: NameIn, user: NameIn, body: MemberIn, teams: TeamsDep, caller: ActorDep
) -> TeamOut:
    """Add a user with a role, or change their role: the team's admins and server admins."""
    return TeamOut.of(teams.set_member(name, user, body.role, actor=caller))


@router.delete("/{name}/members/{user}", response_model=TeamOut)
def remove_member(name: NameIn, user: NameIn, teams: TeamsDep, caller: ActorDep) -> TeamOut:
    return TeamOut.of(teams.remove_member(name, user, actor=caller))
