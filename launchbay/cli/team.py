"""`bay team`: teams and their members' roles (viewer, member, admin)."""

from typing import Annotated, Any

import typer

from launchbay.cli.common import Output, api_client, check_output, emit

team_app = typer.Typer(no_args_is_help=True, help="Teams: who sees, makes and manages spaces.")


@team_app.command("list")
def list_teams(output: Output = "table") -> None:
    """Every team, its members and live spaces, and your role in it."""
    as_json = check_output(output)
    teams = api_client().get("/api/v1/teams")
    if as_json:
        emit(teams)
        return
    print(f"{'TEAM':<24} {'MEMBERS':>7} {'SPACES':>6}  YOUR ROLE")
    for team in teams:
        role = team["my_role"] or "-"
        print(f"{team['name']:<24} {len(team['members']):>7} {team['spaces']:>6}  {role}")


@team_app.command("show")
def show(name: str, output: Output = "table") -> None:
    """A team's members and their roles."""
    as_json = check_output(output)
    _print(api_client().get(f"/api/v1/teams/{name}"), as_json=as_json)


@team_app.command("create")
def create(name: str) -> None:
    """Make a team (server admins only)."""
    _print(api_client().post("/api/v1/teams", {"name": name}), as_json=False)


@team_app.command("set")
def set_member(
    name: str,
    user: str,
    role: Annotated[str, typer.Option(help="viewer, member or admin")] = "member",
) -> None:
    """Add a user to the team with a role, or change their role (the team's admins)."""
    _print(api_client().put(f"/api/v1/teams/{name}/members/{user}", {"role": role}), as_json=False)


@team_app.command("remove")
def remove_member(name: str, user: str) -> None:
    """Take a user out of the team (the team's admins)."""
    _print(api_client().delete(f"/api/v1/teams/{name}/members/{user}"), as_json=False)


@team_app.command("delete")
def delete(name: str) -> None:
    """Remove a team that owns no live space (server admins only)."""
    api_client().delete(f"/api/v1/teams/{name}")
    print(f"team {name!r} removed")


def _print(team: dict[str, Any], *, as_json: bool) -> None:
    if as_json:
        emit(team)
        return
    print(f"team     {team['name']}  ({team['spaces']} live spaces)")
    for member in team["members"]:
        print(f"  {member['role']:<8} {member['user']}")
