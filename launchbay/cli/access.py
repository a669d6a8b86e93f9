"""Users, contexts and the server's health: `bay user`, `bay portal`, `bay context` and
`bay doctor` (signing in and out is auth.py's). portal and doctor are top-level commands,
which main.py adds to the root app in their place in the help."""

from typing import Annotated

import typer

from launchbay.cli import context as ctx
from launchbay.cli.common import G, Output, api_client, check_output, emit
from launchbay.cli.errors import CliError, ExitStatus

user_app = typer.Typer(no_args_is_help=True, help="Users and tokens (admins only).")
context_app = typer.Typer(no_args_is_help=True, help="Which server and token `bay` uses.")


@user_app.command("create")
def user_create(
    name: str, admin: Annotated[bool, typer.Option(help="may manage users and every space")] = False
) -> None:
    """Create a user and print their token (shown once)."""
    created = api_client().post("/api/v1/users", {"name": name, "admin": admin})
    print(created["token"])


def portal(
    open_browser: Annotated[
        bool, typer.Option("--open/--no-open", help="open it in the browser")
    ] = True,
) -> None:
    """Open the portal signed in as you: a link that works once, within a minute."""
    link = api_client().post("/api/v1/me/signin-link")
    print(f"{link['url']}  (works once, within {link['valid_seconds']}s)")
    if open_browser:
        import webbrowser

        webbrowser.open(link["url"])


@context_app.command("list")
def context_list() -> None:
    """Known contexts; the current one is marked."""
    data = ctx.load()
    current = data.get("current", "local")
    names = sorted(set(data["contexts"]) | {"local"})
    for name in names:
        entry = data["contexts"].get(name, {"server": ctx.DEFAULT_SERVER})
        print(f"{'*' if name == current else ' '} {name:<16} {entry.get('server')}")


@context_app.command("use")
def context_use(name: str) -> None:
    """Switch to another context."""
    data = ctx.load()
    if name not in data["contexts"] and name != "local":
        raise CliError(f"no context named {name!r}; see `bay context list`", ExitStatus.USAGE)
    data["current"] = name
    ctx.save(data)
    print(f"context {name!r} is now current")


def doctor(output: Output = "table") -> None:
    """Check that the server answers and the token works; report each runtime's state."""
    as_json = check_output(output)
    checks: list[tuple[str, bool, str]] = []
    resolved = ctx.resolve(name=G.context, server=G.server, token=G.token)
    checks.append(("context", True, resolved.origins()))
    try:
        client = api_client()
        me = client.get("/api/v1/whoami")
        checks.append(("server", True, f"answers; signed in as {me['name']}"))
        checks.append(("installation", True, str(me.get("installation", "?"))))
        for name, runtime in client.get("/api/v1/runtimes").items():
            checks.append((f"runtime {name}", runtime["ok"], runtime["detail"]))
    except CliError as e:
        checks.append(("server", False, e.message))
    if as_json:
        emit([{"check": c, "ok": ok, "detail": d} for c, ok, d in checks])
    else:
        for check, ok, detail in checks:
            print(f"{'ok ' if ok else 'BAD'} {check:<20} {detail}")
    if not all(ok for _, ok, _ in checks):
        raise typer.Exit(ExitStatus.ERROR)
