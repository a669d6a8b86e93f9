"""`bay space`: create, inspect and manage spaces."""

import sys
from typing import Annotated, Any

import typer

from launchbay.cli.common import (
    Duration,
    Output,
    WaitFlag,
    api_client,
    check_output,
    check_phase,
    console,
    emit,
    pairs,
    spec_body,
    to_seconds,
)
from launchbay.cli.completion import (
    complete_phase,
    complete_service,
    complete_space,
    complete_template,
)
from launchbay.cli.errors import RUNTIME_HELP, CliError, ExitStatus

space_app = typer.Typer(no_args_is_help=True, help="Create, inspect and manage spaces.")

SpaceName = Annotated[
    str, typer.Argument(metavar="NAME", help="the space", autocompletion=complete_space)
]
ServiceName = Annotated[
    str,
    typer.Argument(
        metavar="SERVICE", help="a service of the space", autocompletion=complete_service
    ),
]


@space_app.command("create")
def space_create(
    name: Annotated[str, typer.Argument(metavar="NAME", help="a new space's name")],
    template: Annotated[
        str,
        typer.Option(
            "--template",
            "-t",
            metavar="TEMPLATE",
            help="the template to make it from (`bay template list`)",
            autocompletion=complete_template,
        ),
    ],
    runtime: Annotated[str | None, typer.Option(metavar="RUNTIME", help=RUNTIME_HELP)] = None,
    ttl: Annotated[
        str | None,
        typer.Option(metavar="DURATION", help="time to live, e.g. 2h (default: the template's)"),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", metavar="SERVICE.KEY=VALUE", help="e.g. api.version=pr-1"),
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option("--param", metavar="NAME=VALUE", help="a template parameter"),
    ] = None,
    wait: Annotated[bool, typer.Option(help="wait until it is ready, showing progress")] = False,
    timeout: Duration = "15m",
    output: Output = "table",
) -> None:
    """Create a space from a template."""
    as_json = check_output(output)
    seconds = to_seconds(timeout)
    client = api_client()
    spec = spec_body(template=template, runtime=runtime, ttl=ttl, params=param, sets=set_)
    space = client.post("/api/v1/spaces", {"name": name, **spec})
    _until_settled(client, space, wait=wait, timeout=seconds, as_json=as_json)


@space_app.command("list")
def space_list(
    output: Output = "table",
    mine: Annotated[bool, typer.Option(help="only my spaces")] = False,
    phase: Annotated[
        str | None,
        typer.Option(metavar="PHASE", help="only this phase", autocompletion=complete_phase),
    ] = None,
    template: Annotated[
        str | None,
        typer.Option(
            metavar="TEMPLATE", help="only this template", autocompletion=complete_template
        ),
    ] = None,
    runtime: Annotated[
        str | None, typer.Option(metavar="RUNTIME", help="only this runtime")
    ] = None,
    include_deleted: Annotated[bool, typer.Option(help="deleted spaces too")] = False,
    ended: Annotated[
        bool, typer.Option(help="only the spaces that ended lately, with why and when")
    ] = False,
    limit: Annotated[int, typer.Option(metavar="N", help="at most this many")] = 100,
    no_headers: Annotated[bool, typer.Option("--no-headers", help="no header line")] = False,
) -> None:
    """Spaces, newest first."""
    as_json = check_output(output)
    if phase is not None:
        check_phase(phase)
    client = api_client()
    owner = client.get("/api/v1/whoami")["name"] if mine else None
    page = client.get(
        "/api/v1/spaces",
        limit=limit,
        owner=owner,
        phase=phase,
        template=template,
        runtime=runtime,
        include_deleted=include_deleted or None,
        ended=ended or None,
    )
    if as_json:
        return emit(page["items"])
    from launchbay.cli.output import space_table

    out = console()
    table = space_table(page["items"], wide=output == "wide", headers=not no_headers)
    out.print(table if page["items"] else "no spaces")
    if page["total"] > len(page["items"]):
        out.print(f"({len(page['items'])} of {page['total']} shown; --limit for more)")


@space_app.command("show")
def space_show(name: SpaceName, output: Output = "table") -> None:
    """One space: phase, owner, expiry, services and endpoints."""
    as_json = check_output(output)
    _print_space(api_client().get(f"/api/v1/spaces/{name}"), as_json)


@space_app.command("extend")
def space_extend(
    name: SpaceName,
    by: Annotated[str, typer.Option(metavar="DURATION", help="how much longer, e.g. 1h")],
    output: Output = "table",
) -> None:
    """Give a space more time, within its template's maximum."""
    as_json = check_output(output)
    space = api_client().post(f"/api/v1/spaces/{name}/extend", {"by": by})
    if as_json:
        return emit(space)
    from launchbay.cli.output import relative

    print(f"{name} now expires {relative(space['expires_at'])} ({space['expires_at']})")


@space_app.command("delete")
def space_delete(
    name: SpaceName,
    wait: Annotated[bool, typer.Option(help="wait until it is gone")] = False,
    timeout: Duration = "10m",
) -> None:
    """Delete a space and everything it runs. Idempotent."""
    seconds = to_seconds(timeout)
    client = api_client()
    space = client.delete(f"/api/v1/spaces/{name}")
    if space["phase"] == "deleted":
        print(f"{name} was deleted already")
    elif wait:
        from launchbay.cli.output import wait_for

        wait_for(client, name, until={"deleted"}, timeout=seconds, live=False)
        print(f"{name} deleted")
    else:
        print(f"{name} is being deleted")


@space_app.command("deploy")
def space_deploy(
    name: SpaceName,
    service: ServiceName,
    version: Annotated[
        str | None, typer.Option(metavar="VERSION", help="the version to run, e.g. pr-123")
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", metavar="KEY=VALUE", help="of this service, e.g. env.DEBUG=1"),
    ] = None,
    wait: Annotated[bool, typer.Option(help="wait until the deploy has finished")] = False,
    timeout: Duration = "15m",
    output: Output = "table",
) -> None:
    """Redeploy one service of a space; the others keep running untouched."""
    as_json = check_output(output)
    to_seconds(timeout)
    body = {"service": service, "version": version, "set": pairs(set_ or [], "--set")}
    path = f"/api/v1/spaces/{name}/deploy?wait={'true' if wait else 'false'}&timeout={timeout}"
    deploy = api_client().post(path, body)
    if as_json:
        emit(deploy)
    else:
        change = f"{deploy['from_version']} -> {deploy['to_version']}"
        print(f"deploy #{deploy['id']}: {service} {change}: {deploy['result']}")
    if deploy["result"] == "failed":
        raise CliError(deploy["detail"].splitlines()[0], ExitStatus.SPACE_FAILED)


@space_app.command("history")
def space_history(name: SpaceName, output: Output = "table") -> None:
    """A space's deploys: which service, from which version to which, who, when, result."""
    as_json = check_output(output)
    deploys = api_client().get(f"/api/v1/spaces/{name}/deploys")
    if as_json:
        return emit(deploys)
    if not deploys:
        print(f"no deploys of {name} yet; `bay space deploy` makes one")
        return
    from rich.table import Table

    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("#", "WHEN", "SERVICE", "FROM", "TO", "BY", "RESULT", "TOOK"):
        table.add_column(column, overflow="fold")
    for d in deploys:
        took = f"{d['duration_s']:.1f}s" if d["duration_s"] is not None else "-"
        table.add_row(
            str(d["id"]),
            d["requested_at"][:19],
            d["service"],
            d["from_version"],
            d["to_version"],
            d["source"] or d["actor"],
            d["result"],
            took,
        )
    console().print(table)


def _provision_again(action: str, doc: str) -> None:
    """`bay space retry` and `bay space recreate`: the same request at two endpoints."""

    def command(
        name: SpaceName,
        wait: Annotated[
            bool, typer.Option(help="wait until it is ready, showing progress")
        ] = False,
        timeout: Duration = "15m",
        output: Output = "table",
    ) -> None:
        as_json = check_output(output)
        seconds = to_seconds(timeout)
        client = api_client()
        space = client.post(f"/api/v1/spaces/{name}/{action}")
        _until_settled(client, space, wait=wait, timeout=seconds, as_json=as_json)

    command.__doc__ = doc
    space_app.command(action)(command)


_provision_again("retry", "Provision a failed or degraded space again with the same spec.")
_provision_again(
    "recreate",
    "Remove everything a space runs, its data too, and make it again with the same spec.",
)


@space_app.command("sleep")
def space_sleep(name: SpaceName, wait: WaitFlag = False, timeout: Duration = "10m") -> None:
    """Stop a space's services, keeping its state."""
    _sleep_or_wake(name, "sleep", until={"sleeping"}, wait=wait, timeout=timeout)


@space_app.command("wake")
def space_wake(name: SpaceName, wait: WaitFlag = False, timeout: Duration = "15m") -> None:
    """Start a sleeping space again."""
    _sleep_or_wake(name, "wake", until={"ready", "settled"}, wait=wait, timeout=timeout)


def _sleep_or_wake(name: str, action: str, *, until: set[str], wait: bool, timeout: str) -> None:
    seconds = to_seconds(timeout)
    client = api_client()
    client.post(f"/api/v1/spaces/{name}/{action}")
    if not wait:
        print(f"{name} is {'going to sleep' if action == 'sleep' else 'waking up'}")
        return
    from launchbay.cli.output import wait_for

    space = wait_for(client, name, until=until, timeout=seconds, live=True)
    print(f"{name} is {space['phase']}")
    if space["phase"] in ("failed", "degraded"):
        reason = (space["reason"] or "see `bay space show`").splitlines()[0]
        raise CliError(f"space {name!r} is {space['phase']}: {reason}", ExitStatus.SPACE_FAILED)


@space_app.command("logs")
def space_logs(
    name: SpaceName,
    service: ServiceName,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="keep printing new lines")] = False,
    tail: Annotated[int, typer.Option(metavar="N", help="how many lines from the end")] = 200,
) -> None:
    """A service's log."""
    for line in api_client().stream_lines(
        f"/api/v1/spaces/{name}/logs/{service}", tail=tail, follow=follow
    ):
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


@space_app.command("events")
def space_events(name: SpaceName, output: Output = "table") -> None:
    """What happened to a space: who did what, when, and why it failed."""
    as_json = check_output(output)
    events = api_client().get(f"/api/v1/spaces/{name}/events")
    if as_json:
        return emit(events)
    from rich.markup import escape
    from rich.table import Table

    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("WHEN", "ACTOR", "KIND", "MESSAGE"):
        table.add_column(column, overflow="fold")
    for event in reversed(events):
        table.add_row(event["at"], escape(event["actor"]), event["kind"], escape(event["message"]))
    console().print(table)


def _print_space(space: dict[str, Any], as_json: bool) -> None:
    if as_json:
        return emit(space)
    from launchbay.cli.output import show_space

    show_space(space)


def _until_settled(
    client: Any, space: dict[str, Any], *, wait: bool, timeout: float, as_json: bool
) -> None:
    """With --wait, follow the space until it settles at its generation; print it; a
    failed or degraded space is exit 6 with its reason."""
    name = space["name"]
    if wait:
        from launchbay.cli.output import wait_for

        space = wait_for(
            client,
            name,
            until={"ready", "settled"},
            timeout=timeout,
            live=not as_json,
            generation=space["generation"],
        )
    _print_space(space, as_json)
    if space["phase"] in ("failed", "degraded"):
        reason = (space["reason"] or "see `bay space show`").splitlines()[0]
        raise CliError(f"space {name!r} is {space['phase']}: {reason}", ExitStatus.SPACE_FAILED)
