"""Who `bay` speaks as, and with which token from where: `bay auth status` (as `gh auth`
has it)."""

from dataclasses import asdict
from typing import Any

import typer

from launchbay.cli import context as ctx
from launchbay.cli.common import Output, api_client, check_output, emit

auth_app = typer.Typer(no_args_is_help=True, help="Who `bay` speaks as, and with which token.")


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
        ("last used", when(key.get("last_used_at"), "never")),
    ]
