"""The `bay` command: the root app, its global options, and the one error translator.
Each command group lives in its own module (space, template, notify, auth, access, ci,
server, completion); this one only assembles them. Heavy modules (rich, yaml, the server) are
imported only when used, so that quick commands start fast; nothing of the server stack is
on the client's path. Annotations are evaluated at import (no `from __future__ import
annotations`) here and in every module that declares commands: typer reads every command's
signature on each run, and evaluating strings cost a quarter of it."""

import os
import sys
from typing import Annotated

import typer
from typer._click.exceptions import ClickException  # typer's own copy of click

from launchbay import __version__
from launchbay.cli import access, audit, auth, completion, keys, quota, team
from launchbay.cli.ci import ci_app
from launchbay.cli.common import G
from launchbay.cli.errors import CliError, ExitStatus
from launchbay.cli.notify import notify_app
from launchbay.cli.server import server
from launchbay.cli.space import space_app
from launchbay.cli.template import template_app

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Launchbay: ephemeral, production-like environments with a time-to-live.",
)
# Help lists the commands in the order they are added here, the groups after them.
app.command()(server)
app.command()(auth.login)
app.command()(auth.logout)
app.command()(access.portal)
app.command()(access.doctor)
app.command()(audit.audit)
app.command()(completion.completion)
app.add_typer(space_app, name="space")
app.add_typer(template_app, name="template")
auth.auth_app.add_typer(keys.token_app, name="token")
app.add_typer(auth.auth_app, name="auth")
app.add_typer(access.user_app, name="user")
app.add_typer(quota.quota_app, name="quota")
app.add_typer(team.team_app, name="team")
app.add_typer(access.context_app, name="context")
app.add_typer(notify_app, name="notify")
app.add_typer(ci_app, name="ci")


def _version(value: bool) -> None:
    if value:
        print(f"bay {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    server: Annotated[
        str | None, typer.Option(help="server URL (else BAY_SERVER, else the context)")
    ] = None,
    token: Annotated[
        str | None, typer.Option(help="API token (else BAY_TOKEN, else the context)")
    ] = None,
    context: Annotated[
        str | None, typer.Option(help="context name (else BAY_CONTEXT, else the current one)")
    ] = None,
    traceback: Annotated[bool, typer.Option(help="show the full traceback of an error")] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="print the version and exit"
        ),
    ] = False,
) -> None:
    G.server, G.token, G.context, G.traceback = server, token, context, traceback


def main() -> None:
    """Entry point: every error becomes one line and an exit status (--traceback for more)."""
    if os.environ.get(completion.COMPLETE_VAR):
        from typer._completion_classes import completion_init

        completion_init()  # the shells' completion classes; the script calls back here
    try:
        code = app(standalone_mode=False)
    except CliError as e:
        if G.traceback:
            raise
        print(f"bay: {e.message}", file=sys.stderr)
        sys.exit(e.status)
    except (KeyboardInterrupt, typer.Abort):
        sys.exit(130)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except ClickException as e:  # usage errors: typer's click prints them itself
        e.show()
        sys.exit(ExitStatus.USAGE)
    except Exception as e:
        if G.traceback or os.environ.get("BAY_TRACEBACK"):
            raise
        print(
            f"bay: unexpected error: {e.__class__.__name__}: {e} "
            "(run with --traceback for details)",
            file=sys.stderr,
        )
        sys.exit(ExitStatus.ERROR)
    finally:
        while G.clients:
            G.clients.pop().close()
    sys.exit(code if isinstance(code, int) else ExitStatus.OK)
