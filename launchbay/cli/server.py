"""`bay server`: its flags, the environment and the `--config` file become the server's one
settings tree (`launchbay.settings`), built here when the command runs (never at import).
The server package is the whole server stack, so it is imported only inside these
functions: no other command pays for it.

Every flag defaults to "not given": a flag overrides the file and the environment only
when it is used, and every default is the settings tree's (`--print-config` shows them)."""

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from launchbay.cli import context as ctx
from launchbay.cli.common import invalid_is_usage
from launchbay.cli.errors import CliError, ExitStatus

if TYPE_CHECKING:
    from launchbay.server import ServerSettings

# The command's flags, declared here so that its signature reads one line a flag; each
# names the key of the settings tree it sets.
_Host = Annotated[str | None, typer.Option(help="address to listen on (server.host)")]
_Port = Annotated[int | None, typer.Option(help="port to listen on (server.port)")]
_DataDir = Annotated[
    Path | None, typer.Option(help="state folder (server.data_dir; default: XDG data dir)")
]
_Templates = Annotated[
    Path | None, typer.Option(help="folder of template YAML files (server.templates)")
]
_Db = Annotated[
    str | None,
    typer.Option(help="database URL (database.url, or LAUNCHBAY_DB; default: SQLite)"),
]
_ReconcileInterval = Annotated[
    float | None, typer.Option(help="seconds between reconcile passes (engine.reconcile_interval)")
]
_SweepInterval = Annotated[
    float | None, typer.Option(help="seconds between expiry sweeps (engine.sweep_interval)")
]
_OrphanGrace = Annotated[
    float | None,
    typer.Option(help="seconds before orphaned resources are removed (engine.orphan_grace)"),
]
_Workers = Annotated[
    int | None, typer.Option(help="jobs this server runs at once (engine.workers)")
]
_MinTtl = Annotated[
    str | None,
    typer.Option(metavar="DURATION", help="the shortest TTL a space may ask for (engine.min_ttl)"),
]
_Copilot = Annotated[
    bool | None,
    typer.Option(
        "--copilot/--no-copilot",
        help="mark expired spaces instead of deleting them (engine.copilot)",
        show_default=False,
    ),
]
_LogLevel = Annotated[
    str | None, typer.Option(help="debug, info, warning or error (server.log_level)")
]
_Config = Annotated[
    Path | None,
    typer.Option(help="the server's settings file (YAML; docs/settings.md has every key)"),
]
_PrintConfig = Annotated[
    bool,
    typer.Option(
        "--print-config",
        help="print the effective settings (secrets redacted) and exit",
        show_default=False,
    ),
]
_Kubeconfig = Annotated[
    str | None,
    typer.Option(
        help="enable Team Spaces with this kubeconfig (kubernetes.kubeconfig; in a pod: automatic)"
    ),
]
_KubeContext = Annotated[str | None, typer.Option(help="kubeconfig context (kubernetes.context)")]
_NamespacePrefix = Annotated[
    str | None, typer.Option(help="prefix of space namespaces (kubernetes.namespace_prefix)")
]
_BaseDomain = Annotated[
    str | None,
    typer.Option(help="endpoints become Ingress hosts under it (kubernetes.base_domain)"),
]
_AllowedHost = Annotated[
    list[str] | None,
    typer.Option(
        help="a host name requests may carry (repeat for more; server.allowed_hosts); a "
        "loopback server answers only loopback names and these"
    ),
]
_ProcessIsolation = Annotated[
    str | None,
    typer.Option(
        metavar="auto|sandbox|none",
        help="process services each in a sandbox (sandbox: or do not start), as the "
        "server's user (none: a laptop's own), or sandboxed where the machine can (auto) "
        "(process.isolation)",
    ),
]
_ServiceUids = Annotated[
    str | None,
    typer.Option(
        metavar="FIRST-LAST",
        help="user ids a root server gives spaces, one each (process.service_uids)",
    ),
]
_MaxBody = Annotated[
    int | None,
    typer.Option(help="bytes one request body may have, 413 beyond (server.max_body)"),
]
_MaxFollows = Annotated[
    int | None,
    typer.Option(help="logs followed at once, by everyone, 429 beyond (server.max_follows)"),
]
_MaxFollowsPerUser = Annotated[
    int | None,
    typer.Option(help="logs followed at once by one user (server.max_follows_per_user)"),
]
_AdminOnlyRuntime = Annotated[
    list[str] | None,
    typer.Option(
        help="only admins may create spaces on this runtime (repeat for more; "
        "server.admin_only_runtimes; default: a runtime whose services would run as the "
        "server: process without a sandbox)"
    ),
]

# Each flag and the key of the tree it sets.
FLAG_KEYS = {
    "host": ("server", "host"),
    "port": ("server", "port"),
    "data_dir": ("server", "data_dir"),
    "templates": ("server", "templates"),
    "log_level": ("server", "log_level"),
    "allowed_host": ("server", "allowed_hosts"),
    "max_body": ("server", "max_body"),
    "max_follows": ("server", "max_follows"),
    "max_follows_per_user": ("server", "max_follows_per_user"),
    "admin_only_runtime": ("server", "admin_only_runtimes"),
    "db": ("database", "url"),
    "reconcile_interval": ("engine", "reconcile_interval"),
    "sweep_interval": ("engine", "sweep_interval"),
    "orphan_grace": ("engine", "orphan_grace"),
    "workers": ("engine", "workers"),
    "min_ttl": ("engine", "min_ttl"),
    "copilot": ("engine", "copilot"),
    "process_isolation": ("process", "isolation"),
    "service_uids": ("process", "service_uids"),
    "kubeconfig": ("kubernetes", "kubeconfig"),
    "kube_context": ("kubernetes", "context"),
    "namespace_prefix": ("kubernetes", "namespace_prefix"),
    "base_domain": ("kubernetes", "base_domain"),
}


def server(
    host: _Host = None,
    port: _Port = None,
    data_dir: _DataDir = None,
    templates: _Templates = None,
    db: _Db = None,
    reconcile_interval: _ReconcileInterval = None,
    sweep_interval: _SweepInterval = None,
    orphan_grace: _OrphanGrace = None,
    workers: _Workers = None,
    min_ttl: _MinTtl = None,
    copilot: _Copilot = None,
    log_level: _LogLevel = None,
    config: _Config = None,
    print_config: _PrintConfig = False,
    kubeconfig: _Kubeconfig = None,
    kube_context: _KubeContext = None,
    namespace_prefix: _NamespacePrefix = None,
    base_domain: _BaseDomain = None,
    allowed_host: _AllowedHost = None,
    process_isolation: _ProcessIsolation = None,
    service_uids: _ServiceUids = None,
    max_body: _MaxBody = None,
    max_follows: _MaxFollows = None,
    max_follows_per_user: _MaxFollowsPerUser = None,
    admin_only_runtime: _AdminOnlyRuntime = None,
) -> None:
    """Run the Launchbay server: API, portal and the engine's loops."""
    given = {name: value for name, value in locals().items() if name in FLAG_KEYS}
    settings = _settings(config, given)
    if print_config:
        from launchbay.server import printable

        typer.echo(printable(settings.effective_tree()), nl=False)
        return
    _serve(settings)


def _settings(config: Path | None, given: dict[str, Any]) -> "ServerSettings":
    """The settings tree from the file, the environment and the flags given; any mistake
    in any of them is a usage error naming where it came from."""
    from launchbay.server import Given, Sources, load_settings, settings_of

    flags = [
        Given(FLAG_KEYS[name], _plain(value), "--" + name.replace("_", "-"))
        for name, value in given.items()
        if value is not None
    ]
    with invalid_is_usage():
        tree = load_settings(Sources(file=config, flags=flags))
        return settings_of(tree, file=config)


def _plain(value: Any) -> Any:
    """A flag's value as the tree reads it (a path as text, repeated flags as a list)."""
    if isinstance(value, Path):
        return str(value)
    return list(value) if isinstance(value, list | tuple) else value


def _serve(settings: "ServerSettings") -> None:
    """Serve until stopped. Once listening, the server records itself as a context."""
    from launchbay.server import serve

    def record_context() -> None:
        print(_record_context(settings), flush=True)

    from launchbay.domain.errors import Invalid, LaunchbayError

    try:
        serve(settings, on_listening=record_context)
    except Invalid as e:
        raise CliError(e.message, ExitStatus.USAGE) from e
    except LaunchbayError as e:  # what it needs does not answer (its database, a runtime)
        raise CliError(e.message, ExitStatus.UNREACHABLE) from e


def _record_context(settings: "ServerSettings") -> str:
    """Record this server as the CLI's `local` context, unless `local` points at another
    server that still answers (the demo's `bay space list` would reach the wrong one):
    then as `local-PORT`. The current context stays as it is. Says which context it
    wrote, and why, in one line."""
    from launchbay.cli.client import answers

    contexts = ctx.load()["contexts"]
    busy: list[str] = []
    for name in ("local", f"local-{settings.port}"):
        other = contexts.get(name, {}).get("server")
        if other is None:
            why = f"there was no context {name!r}"
        elif _same_server(other, settings.url):
            why = f"it points at {other}, this server"
        elif answers(other):
            busy.append(f"context {name!r} points at {other}, which still answers")
            continue
        else:
            why = f"{other}, where it pointed, does not answer"
        ctx.set_context(name, server=settings.url, token_file=str(settings.token_file), use=False)
        if busy:
            return f"context {name!r} written: {busy[0]}; `bay context use {name}` to use it"
        return f"context {name!r} written: {why}"
    return f"no context written: {'; '.join(busy)}"


def _same_server(a: str, b: str) -> bool:
    """Whether two URLs name one host and port (`localhost` and 127.0.0.1 alike)."""
    from urllib.parse import urlsplit

    def where(url: str) -> str:
        return urlsplit(url.lower()).netloc.replace("localhost", "127.0.0.1")

    return where(a) == where(b)
