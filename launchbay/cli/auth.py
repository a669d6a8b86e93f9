"""Signing in and out, and who `bay` speaks as: `bay login`, `bay logout` and `bay auth
status` (as `gh auth` has them). login and logout are top-level commands, which main.py
adds to the root app in their place in the help."""

import os
import sys
from dataclasses import asdict
from typing import Annotated, Any

import typer

from launchbay.cli import context as ctx
from launchbay.cli.common import G, Output, api_client, check_output, emit
from launchbay.cli.errors import CliError, ExitStatus

auth_app = typer.Typer(no_args_is_help=True, help="Who `bay` speaks as, and with which token.")


def login(
    server_url: Annotated[
        str, typer.Argument(metavar="SERVER", help="e.g. https://launchbay.example.com")
    ],
    with_token: Annotated[
        bool, typer.Option("--with-token", help="read the token from standard input")
    ] = False,
    token: Annotated[
        str | None, typer.Option(help="your API token (else read or asked for)", show_default=False)
    ] = None,
    name: Annotated[str, typer.Option(help="context name")] = "default",
) -> None:
    """Save a server and token as a context and switch to it. The token is one line of
    standard input with --with-token or when that is not a terminal
    (`bay login SERVER --with-token < token.txt`), else asked for."""
    from launchbay.cli.client import Client

    secret, origin = _token_to_log_in_with(token, with_token=with_token)
    server = server_url.rstrip("/")
    client = Client(ctx.Context(name, server, secret, ctx.Origin("flag", "SERVER"), origin))
    G.clients.append(client)
    me = client.get("/api/v1/whoami")  # a refused token leaves the config file as it was
    ctx.set_context(name, server=server, token=secret)
    print(f"logged in to {server} as {me['name']}; context {name!r} is now current")


def _token_to_log_in_with(given: str | None, *, with_token: bool) -> tuple[str, ctx.Origin]:
    """--token, else one line of standard input (with --with-token, or when it is piped:
    a hidden prompt there warns and reads nothing), else typed at a hidden prompt."""
    if given is not None and with_token:
        raise CliError("give the token by --token or by --with-token, not both", ExitStatus.USAGE)
    if given is not None:
        secret, origin = given, ctx.Origin("flag", "--token")
    elif with_token or not sys.stdin.isatty():
        secret, origin = sys.stdin.readline(), ctx.Origin("input", "standard input")
    else:
        secret, origin = typer.prompt("Token", hide_input=True), ctx.Origin("input", "the prompt")
    if not secret.strip():
        raise CliError(
            "the token is empty: pipe it to `bay login SERVER --with-token`", ExitStatus.USAGE
        )
    return secret.strip(), origin


def logout(
    name: Annotated[
        str | None,
        typer.Option("--context", help="the context to log out of (else the current one)"),
    ] = None,
) -> None:
    """Forget a context's token; its server stays, for `bay login` to sign in to again."""
    data = ctx.load()
    chosen = ctx.chosen_name(data, name or G.context)
    if not ctx.forget_token(data, chosen):
        print(f"context {chosen!r} has no token: nothing to log out of")
        return
    ctx.save(data)
    print(f"logged out of context {chosen!r} ({data['contexts'][chosen]['server']})")
    if os.environ.get("BAY_TOKEN"):
        print("BAY_TOKEN is still set: commands use it until you unset it")


@auth_app.command("status")
def status(output: Output = "table") -> None:
    """Which server, as whom, and where the server URL and the token come from.

    When the token is a key, its scopes, restrictions and expiry too."""
    as_json = check_output(output)
    client = api_client()
    me = client.get("/api/v1/whoami")
    used: ctx.Context = client.context
    found: dict[str, Any] = {
        "server": used.server,
        "server_from": asdict(used.server_origin),
        "name": me["name"],
        "admin": me["admin"],
        "token_from": asdict(used.token_origin),
    }
    if me.get("key") is not None:
        found["key"] = me["key"]
    if as_json:
        emit(found)
        return
    print(f"server       {used.server}  (from {used.server_origin})")
    print(f"signed in as {me['name']}{'  (admin)' if me['admin'] else ''}")
    print(f"token        from {used.token_origin}")
    for label, value in _key_lines(found.get("key")):
        print(f"{label:<12} {value}")


def _key_lines(key: dict[str, Any] | None) -> list[tuple[str, str]]:
    """What a key allows, as `bay auth status` shows it; nothing for a token that is not
    a key (a server without keys says nothing of them)."""
    if key is None:
        return []
    from launchbay.cli.output import relative

    def listed(values: list[str] | None, none: str) -> str:
        return ", ".join(values) if values else none

    def when(iso: str | None, none: str) -> str:
        return f"{iso} ({relative(iso)})" if iso else none

    return [
        ("key", str(key.get("name"))),
        ("scopes", listed(key.get("scopes"), "none")),
        ("templates", listed(key.get("templates"), "any")),
        ("repositories", listed(key.get("repositories"), "any")),
        ("expires", when(key.get("expires_at"), "never")),
    ]
