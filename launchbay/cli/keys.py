"""`bay auth token`: make, list, rotate and revoke API keys (your own; an admin's, anyone's
with --user). A new key's token is printed once, alone on standard output."""

from typing import Annotated, Any
from urllib.parse import quote, urlencode

import typer

from launchbay.cli.common import Output, api_client, check_output, emit

token_app = typer.Typer(no_args_is_help=True, help="API keys: scoped, limited and expiring.")

User = Annotated[
    str | None, typer.Option("--user", help="another user's keys (admins only)", show_default=False)
]


@token_app.command("create")
def create(
    name: str,
    scope: Annotated[
        list[str],
        typer.Option("--scope", help="read, deploy, spaces or admin; repeat for more"),
    ],
    expires: Annotated[str, typer.Option("--expires", help="its life, e.g. 30d")],
    template: Annotated[
        list[str] | None, typer.Option("--template", help="only spaces of this template")
    ] = None,
    repository: Annotated[
        list[str] | None, typer.Option("--repository", help="only spaces of OWNER/NAME (CI)")
    ] = None,
    user: User = None,
) -> None:
    """Make a key and print its token (shown once; the server keeps only a digest)."""
    body: dict[str, Any] = {
        "name": name,
        "scopes": scope,
        "expires_in": expires,
        "templates": template or [],
        "repositories": repository or [],
    }
    made = api_client().post("/api/v1/keys", body | ({"user": user} if user else {}))
    print(made["token"])


@token_app.command("list")
def list_keys(user: User = None, output: Output = "table") -> None:
    """The keys: scopes, limits, expiry and last use; `*` marks the one in use."""
    as_json = check_output(output)
    keys = api_client().get("/api/v1/keys", **({"user": user} if user else {}))
    if as_json:
        emit(keys)
        return
    from launchbay.cli.output import relative

    print(f"  {'NAME':<20} {'SCOPES':<24} {'LIMITED TO':<28} {'EXPIRES':<14} LAST USED")
    for key in keys:
        limits = ", ".join(key["templates"] + key["repositories"]) or "-"
        expires = relative(key["expires_at"]) if key["expires_at"] else "never"
        used = relative(key["last_used_at"]) if key["last_used_at"] else "never"
        mark = "*" if key["current"] else " "
        scopes = ",".join(key["scopes"])
        print(f"{mark} {key['name']:<20} {scopes:<24} {limits:<28} {expires:<14} {used}")


@token_app.command("revoke")
def revoke(name: str, user: User = None) -> None:
    """Revoke a key: it stops working at once."""
    gone = api_client().delete(_path(name, user))
    print(f"key {gone['name']!r} of {gone['user']} revoked")


@token_app.command("rotate")
def rotate(name: str, user: User = None) -> None:
    """A new token for the key, same limits, a fresh life; the old token stops at once.
    Prints the new token."""
    print(api_client().post(_path(name, user, "/rotate"))["token"])


def _path(name: str, user: str | None, tail: str = "") -> str:
    query = f"?{urlencode({'user': user})}" if user else ""
    return f"/api/v1/keys/{quote(name, safe='')}{tail}{query}"
