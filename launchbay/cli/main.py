"""The `bay` command. Heavy modules (rich, yaml, the server) are imported only when used,
so that quick commands start fast; nothing of the server stack is on the client's path.
Annotations here are evaluated at import (no `from __future__ import annotations`): typer
reads every command's signature on each run, and evaluating strings cost a quarter of it."""

import dataclasses
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer._click.exceptions import ClickException  # typer's own copy of click

from launchbay import __version__
from launchbay.cli import context as ctx
from launchbay.cli.errors import RUNTIME_HELP, CliError, ExitStatus

if TYPE_CHECKING:
    from launchbay.domain.template import Template

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Launchbay: ephemeral, production-like environments with a time-to-live.",
)
space_app = typer.Typer(no_args_is_help=True, help="Create, inspect and manage spaces.")
template_app = typer.Typer(
    no_args_is_help=True, help="Templates the server offers, and validating files."
)
user_app = typer.Typer(no_args_is_help=True, help="Users and tokens (admins only).")
context_app = typer.Typer(no_args_is_help=True, help="Which server and token `bay` uses.")
notify_app = typer.Typer(
    no_args_is_help=True,
    help="Your own notification channels: told when your spaces are ready, failed, about to "
    "expire or deleted.",
)
app.add_typer(space_app, name="space")
app.add_typer(template_app, name="template")
app.add_typer(user_app, name="user")
app.add_typer(context_app, name="context")
app.add_typer(notify_app, name="notify")


class _Globals:
    server: str | None = None
    token: str | None = None
    context: str | None = None
    traceback: bool = False
    clients: list[Any] = []  # closed by main() when the command ends
    output: str = "table"


G = _Globals()

FORMATS = ("table", "wide", "name", "json", "yaml")
Output = Annotated[
    str,
    typer.Option(
        "--output",
        "-o",
        metavar="FORMAT",
        help="table, wide, name, json or yaml",
        autocompletion=lambda incomplete: [f for f in FORMATS if f.startswith(incomplete)],
    ),
]


def _ask(path: str, **params: Any) -> Any:
    """The server's answer for completion; None when it cannot be asked (completion never
    prints an error into the shell)."""
    from launchbay.cli.client import Client

    try:
        resolved = ctx.resolve(name=G.context, server=G.server, token=G.token)
        return Client(resolved, timeout=3).get(path, **params)
    except (CliError, ValueError):
        return None


def _starting(items: Any, incomplete: str) -> list[str]:
    names = [str(i["name"]) for i in items or [] if isinstance(i, dict) and "name" in i]
    return sorted(n for n in names if n.startswith(incomplete))


def _complete_space(incomplete: str) -> list[str]:
    return _starting((_ask("/api/v1/spaces", limit=500) or {}).get("items"), incomplete)


def _complete_phase(incomplete: str) -> list[str]:
    from launchbay.domain.phases import Phase

    return [p.value for p in Phase if p.value.startswith(incomplete)]


def _complete_template(incomplete: str) -> list[str]:
    return _starting(_ask("/api/v1/templates"), incomplete)


def _complete_service(context: typer.Context, incomplete: str) -> list[str]:
    space = context.params.get("name")
    answer = _ask(f"/api/v1/spaces/{space}") if space else None
    return _starting((answer or {}).get("services"), incomplete)


SpaceName = Annotated[
    str, typer.Argument(metavar="NAME", help="the space", autocompletion=_complete_space)
]
ServiceName = Annotated[
    str,
    typer.Argument(
        metavar="SERVICE", help="a service of the space", autocompletion=_complete_service
    ),
]
Duration = Annotated[str, typer.Option(metavar="DURATION", help="how long --wait waits")]
WaitFlag = Annotated[bool, typer.Option(help="wait until it is done, showing progress")]


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


def _client() -> Any:
    from launchbay.cli.client import Client

    client = Client(ctx.resolve(name=G.context, server=G.server, token=G.token))
    G.clients.append(client)
    return client


def _check_output(output: str) -> bool:
    """Whether the answer is printed as data (json, yaml, name) rather than as a table."""
    if output not in FORMATS:
        *rest, last = FORMATS
        raise CliError(
            f"--output must be {', '.join(rest)} or {last}, not {output!r}", ExitStatus.USAGE
        )
    G.output = output
    return output in ("json", "yaml", "name")


def _emit(data: Any) -> None:
    """Data in the format asked for: JSON, YAML, or the names it holds one per line."""
    from launchbay.cli.output import print_data

    print_data(data, G.output)


def _check_phase(phase: str) -> None:
    """Checked here, not only by the server, to name the option in the error."""
    from launchbay.domain.phases import Phase  # an enum, nothing more

    if phase not in {p.value for p in Phase}:
        *rest, last = (p.value for p in Phase)
        message = f"--phase must be {', '.join(rest)} or {last}, not {phase!r}"
        raise CliError(message, ExitStatus.USAGE)


def _pairs(items: list[str], flag: str) -> dict[str, str]:
    result = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CliError(f"{flag} {item!r}: write KEY=VALUE", ExitStatus.USAGE)
        result[key] = value
    return result


# -- server ----------------------------------------------------------------------------------


@app.command()
def server(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8470,
    data_dir: Annotated[
        Path | None, typer.Option(help="state folder (default: XDG data dir)")
    ] = None,
    templates: Annotated[Path, typer.Option(help="folder of template YAML files")] = Path(
        "templates"
    ),
    db: Annotated[
        str | None,
        typer.Option(envvar="LAUNCHBAY_DB", help="database URL (default: SQLite in the data dir)"),
    ] = None,
    reconcile_interval: Annotated[
        float, typer.Option(help="seconds between reconcile passes")
    ] = 5.0,
    sweep_interval: Annotated[float, typer.Option(help="seconds between expiry sweeps")] = 1.0,
    orphan_grace: Annotated[
        float, typer.Option(help="seconds before orphaned resources are removed")
    ] = 30.0,
    workers: Annotated[
        int, typer.Option(min=1, max=256, help="jobs this server runs at once")
    ] = 16,
    min_ttl: Annotated[
        str, typer.Option(metavar="DURATION", help="the shortest TTL a space may ask for")
    ] = "1m",
    copilot: Annotated[
        bool, typer.Option(help="mark expired spaces instead of deleting them")
    ] = False,
    log_level: Annotated[str, typer.Option(help="debug, info, warning")] = "info",
    config: Annotated[
        Path | None, typer.Option(help="YAML file for integrations (github: ...)")
    ] = None,
    kubeconfig: Annotated[
        str | None,
        typer.Option(help="enable Team Spaces with this kubeconfig (in a pod: automatic)"),
    ] = None,
    kube_context: Annotated[str | None, typer.Option(help="kubeconfig context")] = None,
    namespace_prefix: Annotated[
        str, typer.Option(envvar="LAUNCHBAY_NAMESPACE_PREFIX", help="prefix of space namespaces")
    ] = "lb-",
    base_domain: Annotated[
        str,
        typer.Option(
            envvar="LAUNCHBAY_BASE_DOMAIN", help="endpoints become Ingress hosts under it"
        ),
    ] = "",
    allowed_host: Annotated[
        list[str] | None,
        typer.Option(
            help="a host name requests may carry (repeat for more); a loopback server "
            "answers only loopback names and these"
        ),
    ] = None,
    process_isolation: Annotated[
        str,
        typer.Option(
            metavar="auto|sandbox|none",
            help="process services each in a sandbox (sandbox: or do not start), as the "
            "server's user (none: a laptop's own), or sandboxed where the machine can (auto)",
        ),
    ] = "auto",
    service_uids: Annotated[
        str,
        typer.Option(metavar="FIRST-LAST", help="user ids a root server gives spaces, one each"),
    ] = "600000-699999",
    max_body: Annotated[
        int, typer.Option(min=1024, help="bytes one request body may have (413 beyond)")
    ] = 1024 * 1024,
    max_follows: Annotated[
        int, typer.Option(min=1, help="logs followed at once, by everyone (429 beyond)")
    ] = 200,
    max_follows_per_user: Annotated[
        int, typer.Option(min=1, help="logs followed at once by one user (429 beyond)")
    ] = 20,
    admin_only_runtime: Annotated[
        list[str] | None,
        typer.Option(
            help="only admins may create spaces on this runtime (repeat for more; default: "
            "a runtime whose services would run as the server: process without a sandbox)"
        ),
    ] = None,
) -> None:
    """Run the Launchbay server: API, portal and the engine's loops."""
    from datetime import timedelta

    from launchbay.domain.errors import Invalid
    from launchbay.server import (
        EngineSettings,
        FollowLimits,
        KubernetesSettings,
        ProcessSettings,
        ServerSettings,
        check_runtime_names,
        default_data_dir,
        load_config,
        serve,
    )

    if not templates.is_dir():
        raise CliError(
            f"templates folder {templates} does not exist (--templates DIR)", ExitStatus.USAGE
        )
    if sweep_interval <= 0 or reconcile_interval <= 0:
        raise CliError("intervals must be greater than zero", ExitStatus.USAGE)
    try:
        loaded = load_config(config)
    except Invalid as e:
        raise CliError(e.message, ExitStatus.USAGE) from e
    in_cluster = bool(os.environ.get("KUBERNETES_SERVICE_HOST"))
    kube = (
        KubernetesSettings(
            kubeconfig=kubeconfig,
            context=kube_context,
            namespace_prefix=namespace_prefix,
            own_namespace=os.environ.get("LAUNCHBAY_NAMESPACE"),
            base_domain=base_domain,
            service_account=os.environ.get("LAUNCHBAY_SERVICE_ACCOUNT"),
        )
        if kubeconfig or in_cluster
        else None
    )
    settings = ServerSettings(
        kubernetes=kube,
        config=loaded,
        config_file=str(config) if config else "",
        data_dir=(data_dir or default_data_dir()).resolve(),
        templates=templates.resolve(),
        host=host,
        port=port,
        db=db,
        log_level=log_level,
        engine=EngineSettings(
            reconcile_interval=reconcile_interval,
            sweep_interval=sweep_interval,
            orphan_grace=orphan_grace,
            copilot=copilot,
            workers=workers,
            min_ttl=timedelta(seconds=_seconds(min_ttl)),
        ),
    )
    if admin_only_runtime is not None:
        check_runtime_names(admin_only_runtime, what="--admin-only-runtime")
    settings = dataclasses.replace(
        settings,
        admin_only_runtimes=tuple(admin_only_runtime) if admin_only_runtime is not None else None,
        follows=FollowLimits(per_user=max_follows_per_user, total=max_follows),
        allowed_hosts=tuple(allowed_host or ()),
        max_body=max_body,
        process=_process_settings(process_isolation, service_uids, ProcessSettings),
    )

    def record_local_context() -> None:
        ctx.set_context(
            "local",
            server=settings.url,
            token_file=str(settings.token_file),
            use=ctx.load().get("current", "local") == "local",
        )

    try:
        serve(settings, on_listening=record_local_context)
    except Invalid as e:
        raise CliError(e.message, ExitStatus.USAGE) from e


def _process_settings(isolation: str, uids: str, make: Any) -> Any:
    if isolation not in ("auto", "sandbox", "none"):
        message = f"--process-isolation must be auto, sandbox or none, not {isolation!r}"
        raise CliError(message, ExitStatus.USAGE)
    first, dash, last = uids.partition("-")
    if not (dash and first.isdigit() and last.isdigit() and 1000 <= int(first) < int(last) < 2**31):
        raise CliError(
            f"--service-uids {uids!r}: write FIRST-LAST, from 1000 up, e.g. 600000-699999",
            ExitStatus.USAGE,
        )
    return make(isolation=isolation, uids=range(int(first), int(last) + 1))


# -- templates -------------------------------------------------------------------------------


@template_app.command("list")
def template_list(output: Output = "table") -> None:
    """Templates the server offers."""
    as_json = _check_output(output)
    templates = _client().get("/api/v1/templates")
    if as_json:
        return _emit(templates)
    from rich.table import Table

    from launchbay.cli.output import console

    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("NAME", "SERVICES", "RUNTIMES", "TTL", "DESCRIPTION"):
        table.add_column(column, overflow="fold")
    for t in templates:
        table.add_row(
            t["name"],
            str(len(t["services"])),
            ",".join(t["runtimes"]),
            f"{t['ttl_default']} (max {t['ttl_max']})",
            t["description"],
        )
    console().print(table)


@template_app.command("show")
def template_show(
    name: Annotated[str, typer.Argument(metavar="TEMPLATE", autocompletion=_complete_template)],
    output: Output = "table",
) -> None:
    """A template's services, dependency order, parameters and TTL policy."""
    as_json = _check_output(output)
    template = _client().get(f"/api/v1/templates/{name}")
    if as_json:
        return _emit(template)
    out = _console()
    out.print(f"{template['name']}: {template['description']}", markup=False)
    out.print(
        f"TTL {template['ttl_default']} by default, at most {template['ttl_max']}; "
        f"runtimes: {', '.join(template['runtimes'])}",
        markup=False,
    )
    for layer, names in enumerate(template["order"], start=1):
        out.print(f"  step {layer}: {', '.join(names)}", markup=False)
    for pname, param in template["params"].items():
        out.print(f"  param {pname} = {param['default']!r}  {param['description']}", markup=False)
    for service in template["services"]:
        for source, kind in service.get("binds", {}).items():
            out.print(f"  {service['name']} mounts {source}: {kind}", markup=False)
    if template["runtimes"]:
        out.print(
            f"create one: bay space create NAME --template {template['name']} --wait",
            markup=False,
        )
    else:
        out.print(
            "no runtime this server enables can run it (`bay doctor` lists them)", markup=False
        )


@template_app.command("validate")
def template_validate(files: Annotated[list[Path], typer.Argument(help="template files")]) -> None:
    """Validate template files locally; every problem is shown with file, line and field."""
    from launchbay.domain.template import parse_template
    from launchbay.domain.yamlsource import YamlError

    failed = False
    for file in files:
        try:
            template = parse_template(
                _read_text(file), file=str(file), read=lambda p: p.read_text(encoding="utf-8")
            )
        except YamlError as e:
            failed = True
            for problem in e.problems:
                print(problem, file=sys.stderr)
            continue
        problems = _runtime_problems(template)
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            failed = True
        else:
            count = _count(template.services, "service")
            print(f"{file}: template {template.name!r} is valid ({count})")
    if failed:
        raise typer.Exit(ExitStatus.USAGE)


def _runtime_problems(template: "Template") -> list[str]:
    """The runtimes' own validation of a template (Compose's of a Compose file), where
    they are installed; a note on stderr for each that could not look."""
    from launchbay.server import runtime_problems

    problems, notes = runtime_problems(template)
    for note in notes:
        print(f"{template.source}: {note}", file=sys.stderr)
    return problems


# -- spaces ----------------------------------------------------------------------------------


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
            autocompletion=_complete_template,
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
    as_json = _check_output(output)
    seconds = _seconds(timeout)
    client = _client()
    body = {
        "name": name,
        "template": template,
        "runtime": runtime,
        "ttl": ttl,
        "params": _pairs(param or [], "--param"),
        "set": _pairs(set_ or [], "--set"),
    }
    space = client.post("/api/v1/spaces", body)
    _until_settled(client, space, wait=wait, timeout=seconds, as_json=as_json)


@space_app.command("list")
def space_list(
    output: Output = "table",
    mine: Annotated[bool, typer.Option(help="only my spaces")] = False,
    phase: Annotated[
        str | None,
        typer.Option(metavar="PHASE", help="only this phase", autocompletion=_complete_phase),
    ] = None,
    template: Annotated[
        str | None,
        typer.Option(
            metavar="TEMPLATE", help="only this template", autocompletion=_complete_template
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
    as_json = _check_output(output)
    if phase is not None:
        _check_phase(phase)
    client = _client()
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
        return _emit(page["items"])
    from launchbay.cli.output import space_table

    out = _console()
    table = space_table(page["items"], wide=output == "wide", headers=not no_headers)
    out.print(table if page["items"] else "no spaces")
    if page["total"] > len(page["items"]):
        out.print(f"({len(page['items'])} of {page['total']} shown; --limit for more)")


@space_app.command("show")
def space_show(name: SpaceName, output: Output = "table") -> None:
    """One space: phase, owner, expiry, services and endpoints."""
    as_json = _check_output(output)
    _print_space(_client().get(f"/api/v1/spaces/{name}"), as_json)


@space_app.command("extend")
def space_extend(
    name: SpaceName,
    by: Annotated[str, typer.Option(metavar="DURATION", help="how much longer, e.g. 1h")],
    output: Output = "table",
) -> None:
    """Give a space more time, within its template's maximum."""
    as_json = _check_output(output)
    space = _client().post(f"/api/v1/spaces/{name}/extend", {"by": by})
    if as_json:
        return _emit(space)
    from launchbay.cli.output import relative

    print(f"{name} now expires {relative(space['expires_at'])} ({space['expires_at']})")


@space_app.command("delete")
def space_delete(
    name: SpaceName,
    wait: Annotated[bool, typer.Option(help="wait until it is gone")] = False,
    timeout: Duration = "10m",
) -> None:
    """Delete a space and everything it runs. Idempotent."""
    seconds = _seconds(timeout)
    client = _client()
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
    as_json = _check_output(output)
    _seconds(timeout)
    body = {"service": service, "version": version, "set": _pairs(set_ or [], "--set")}
    path = f"/api/v1/spaces/{name}/deploy?wait={'true' if wait else 'false'}&timeout={timeout}"
    deploy = _client().post(path, body)
    if as_json:
        _emit(deploy)
    else:
        change = f"{deploy['from_version']} -> {deploy['to_version']}"
        print(f"deploy #{deploy['id']}: {service} {change}: {deploy['result']}")
    if deploy["result"] == "failed":
        raise CliError(deploy["detail"].splitlines()[0], ExitStatus.SPACE_FAILED)


@space_app.command("history")
def space_history(name: SpaceName, output: Output = "table") -> None:
    """A space's deploys: which service, from which version to which, who, when, result."""
    as_json = _check_output(output)
    deploys = _client().get(f"/api/v1/spaces/{name}/deploys")
    if as_json:
        return _emit(deploys)
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
    _console().print(table)


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
        as_json = _check_output(output)
        seconds = _seconds(timeout)
        client = _client()
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
    seconds = _seconds(timeout)
    client = _client()
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
    for line in _client().stream_lines(
        f"/api/v1/spaces/{name}/logs/{service}", tail=tail, follow=follow
    ):
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


@space_app.command("events")
def space_events(name: SpaceName, output: Output = "table") -> None:
    """What happened to a space: who did what, when, and why it failed."""
    as_json = _check_output(output)
    events = _client().get(f"/api/v1/spaces/{name}/events")
    if as_json:
        return _emit(events)
    from rich.markup import escape
    from rich.table import Table

    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("WHEN", "ACTOR", "KIND", "MESSAGE"):
        table.add_column(column, overflow="fold")
    for event in reversed(events):
        table.add_row(event["at"], escape(event["actor"]), event["kind"], escape(event["message"]))
    _console().print(table)


# -- notification channels -------------------------------------------------------------------


@notify_app.command("add")
def notify_add(
    kind: Annotated[str, typer.Argument(metavar="KIND", help="slack or json")],
    url: Annotated[str, typer.Argument(metavar="URL", help="the webhook's URL")],
    output: Output = "table",
) -> None:
    """Add a channel: a Slack incoming webhook, or a JSON webhook signed as Standard
    Webhooks are (its signing key is printed once)."""
    as_json = _check_output(output)
    channel = _client().post("/api/v1/me/channels", {"kind": kind, "url": url})
    if as_json:
        return _emit(channel)
    print(f"channel {channel['id']}: {channel['kind']} {channel['url']}")
    if channel.get("secret"):
        print(f"signing key (shown once): {channel['secret']}")


@notify_app.command("list")
def notify_list(output: Output = "table") -> None:
    """Your channels."""
    as_json = _check_output(output)
    channels = _client().get("/api/v1/me/channels")
    if as_json:
        return _emit(channels)
    if not channels:
        print("no channels; add one with `bay notify add slack URL`")
    for channel in channels:
        print(f"{channel['id']:<4} {channel['kind']:<6} {channel['url']}")


@notify_app.command("remove")
def notify_remove(
    channel_id: Annotated[int, typer.Argument(metavar="ID", help="as `bay notify list` shows")],
) -> None:
    """Remove one of your channels."""
    _client().delete(f"/api/v1/me/channels/{channel_id}")
    print(f"channel {channel_id} removed")


# -- users, contexts, doctor -----------------------------------------------------------------


@user_app.command("create")
def user_create(
    name: str, admin: Annotated[bool, typer.Option(help="may manage users and every space")] = False
) -> None:
    """Create a user and print their token (shown once)."""
    created = _client().post("/api/v1/users", {"name": name, "admin": admin})
    print(created["token"])


@app.command()
def login(
    server_url: Annotated[
        str, typer.Argument(metavar="SERVER", help="e.g. https://launchbay.example.com")
    ],
    token: Annotated[str, typer.Option(prompt=True, hide_input=True, help="your API token")],
    name: Annotated[str, typer.Option(help="context name")] = "default",
) -> None:
    """Save a server and token as a context and switch to it."""
    from launchbay.cli.client import Client

    client = Client(ctx.Context(name=name, server=server_url, token=token))
    G.clients.append(client)
    me = client.get("/api/v1/whoami")
    ctx.set_context(name, server=server_url, token=token)
    print(f"logged in to {server_url} as {me['name']}; context {name!r} is now current")


@app.command()
def portal(
    open_browser: Annotated[
        bool, typer.Option("--open/--no-open", help="open it in the browser")
    ] = True,
) -> None:
    """Open the portal signed in as you: a link that works once, within a minute."""
    link = _client().post("/api/v1/me/signin-link")
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


@app.command()
def doctor(output: Output = "table") -> None:
    """Check that the server answers and the token works; report each runtime's state."""
    as_json = _check_output(output)
    checks: list[tuple[str, bool, str]] = []
    resolved = ctx.resolve(name=G.context, server=G.server, token=G.token)
    checks.append(("context", True, f"{resolved.name} -> {resolved.server}"))
    try:
        client = _client()
        me = client.get("/api/v1/whoami")
        checks.append(("server", True, f"answers; signed in as {me['name']}"))
        checks.append(("installation", True, str(me.get("installation", "?"))))
        for name, runtime in client.get("/api/v1/runtimes").items():
            checks.append((f"runtime {name}", runtime["ok"], runtime["detail"]))
    except CliError as e:
        checks.append(("server", False, e.message))
    if as_json:
        _emit([{"check": c, "ok": ok, "detail": d} for c, ok, d in checks])
    else:
        for check, ok, detail in checks:
            print(f"{'ok ' if ok else 'BAD'} {check:<20} {detail}")
    if not all(ok for _, ok, _ in checks):
        raise typer.Exit(ExitStatus.ERROR)


SHELLS = ("bash", "zsh", "fish")


@app.command()
def completion(
    shell: Annotated[str, typer.Argument(metavar="SHELL", help="bash, zsh or fish")],
) -> None:
    """Print the shell completion script: commands, options, and the server's space,
    template and service names. bash: `source <(bay completion bash)`; zsh: the same in
    ~/.zshrc; fish: `bay completion fish | source`."""
    if shell not in SHELLS:
        raise CliError(f"SHELL must be bash, zsh or fish, not {shell!r}", ExitStatus.USAGE)
    from typer._completion_shared import get_completion_script

    print(get_completion_script(prog_name="bay", complete_var=COMPLETE_VAR, shell=shell))


from launchbay.cli.ci import register as _register_ci  # noqa: E402

_register_ci(
    app, lambda: _client(), lambda items, flag: _pairs(items, flag), lambda text: _seconds(text)
)


# -- helpers ---------------------------------------------------------------------------------


def _console() -> Any:
    from launchbay.cli.output import console

    return console()


def _print_space(space: dict[str, Any], as_json: bool) -> None:
    if as_json:
        return _emit(space)
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


def _count(items: Any, noun: str) -> str:
    return f"{len(items)} {noun}{'' if len(items) == 1 else 's'}"


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise CliError(f"cannot read {path}: {e}", ExitStatus.USAGE) from e


def _seconds(text: str) -> float:
    from launchbay.domain.durations import parse_duration
    from launchbay.domain.errors import Invalid

    try:
        return parse_duration(text).total_seconds()
    except Invalid as e:
        raise CliError(e.message, ExitStatus.USAGE) from e


COMPLETE_VAR = "_BAY_COMPLETE"


def main() -> None:
    """Entry point: every error becomes one line and an exit status (--traceback for more)."""
    if os.environ.get(COMPLETE_VAR):
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
