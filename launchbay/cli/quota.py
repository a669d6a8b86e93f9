"""`bay quota`: how many spaces a user may have at once, and what uses it."""

from typing import Annotated, Any

import typer

from launchbay.cli.common import Output, api_client, check_output, emit
from launchbay.cli.errors import CliError, ExitStatus

quota_app = typer.Typer(no_args_is_help=True, help="Quotas: spaces a user may have at once.")


@quota_app.command("show")
def show(
    user: Annotated[str | None, typer.Argument(help="default: you")] = None,
    output: Output = "table",
) -> None:
    """A user's quota and the spaces that use it."""
    as_json = check_output(output)
    client = api_client()
    name = user or client.get("/api/v1/whoami")["name"]
    _print(client.get(f"/api/v1/quotas/users/{name}"), as_json=as_json)


@quota_app.command("set")
def set_quota(
    user: str,
    spaces: Annotated[int | None, typer.Option(help="spaces at once", min=0)] = None,
    default: Annotated[bool, typer.Option("--default", help="back to the server's")] = False,
    exempt: Annotated[bool, typer.Option("--exempt/--no-exempt", help="not counted")] = False,
) -> None:
    """Set a user's quota (admins only)."""
    if spaces is not None and default:
        raise CliError("give --spaces N or --default, not both", ExitStatus.USAGE)
    if spaces is None and not default and not exempt:
        raise CliError("give --spaces N, --default or --exempt", ExitStatus.USAGE)
    body = {"spaces": None if default else spaces, "exempt": exempt}
    _print(api_client().put(f"/api/v1/quotas/users/{user}", body), as_json=False)


def _print(usage: dict[str, Any], *, as_json: bool) -> None:
    if as_json:
        emit(usage)
        return
    limit = "none" if usage["spaces"] is None else str(usage["spaces"])
    whose = "set by an admin" if usage["set_by_admin"] else "the server's default"
    print(f"user     {usage['user']}")
    exempt = "; exempt: not counted" if usage["exempt"] else ""
    print(f"spaces   {len(usage['using'])} of {limit} ({whose}){exempt}")
    print(f"using    {', '.join(usage['using']) or '-'}")
