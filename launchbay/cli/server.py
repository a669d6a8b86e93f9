"""`bay server`: the flags become the server's typed settings, built here when the command
runs (never at import). The server package is the whole server stack, so it is imported
only inside these functions: no other command pays for it."""

import os
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal, cast

import typer

from launchbay.cli import context as ctx
from launchbay.cli.common import invalid_is_usage, to_seconds
from launchbay.cli.errors import CliError, ExitStatus

if TYPE_CHECKING:
    from launchbay.server import (
        KubernetesSettings,
        ProcessSettings,
        ServerConfig,
        ServerSettings,
    )

# The command's flags, declared here so that its signature reads one line a flag.
_Host = Annotated[str, typer.Option(help="address to listen on")]
_Port = Annotated[int, typer.Option(help="port to listen on")]
_DataDir = Annotated[Path | None, typer.Option(help="state folder (default: XDG data dir)")]
_Templates = Annotated[Path, typer.Option(help="folder of template YAML files")]
_Db = Annotated[
    str | None,
    typer.Option(envvar="LAUNCHBAY_DB", help="database URL (default: SQLite in the data dir)"),
]
_ReconcileInterval = Annotated[float, typer.Option(help="seconds between reconcile passes")]
_SweepInterval = Annotated[float, typer.Option(help="seconds between expiry sweeps")]
_OrphanGrace = Annotated[float, typer.Option(help="seconds before orphaned resources are removed")]
_Workers = Annotated[int, typer.Option(min=1, max=256, help="jobs this server runs at once")]
_MinTtl = Annotated[
    str, typer.Option(metavar="DURATION", help="the shortest TTL a space may ask for")
]
_Copilot = Annotated[bool, typer.Option(help="mark expired spaces instead of deleting them")]
_LogLevel = Annotated[str, typer.Option(help="debug, info, warning")]
_Config = Annotated[Path | None, typer.Option(help="YAML file for integrations (github: ...)")]
_Kubeconfig = Annotated[
    str | None,
    typer.Option(help="enable Team Spaces with this kubeconfig (in a pod: automatic)"),
]
_KubeContext = Annotated[str | None, typer.Option(help="kubeconfig context")]
_NamespacePrefix = Annotated[
    str, typer.Option(envvar="LAUNCHBAY_NAMESPACE_PREFIX", help="prefix of space namespaces")
]
_BaseDomain = Annotated[
    str,
    typer.Option(envvar="LAUNCHBAY_BASE_DOMAIN", help="endpoints become Ingress hosts under it"),
]
_AllowedHost = Annotated[
    list[str] | None,
    typer.Option(
        help="a host name requests may carry (repeat for more); a loopback server "
        "answers only loopback names and these"
    ),
]
_ProcessIsolation = Annotated[
    str,
    typer.Option(
        metavar="auto|sandbox|none",
        help="process services each in a sandbox (sandbox: or do not start), as the "
        "server's user (none: a laptop's own), or sandboxed where the machine can (auto)",
    ),
]
_ServiceUids = Annotated[
    str,
    typer.Option(metavar="FIRST-LAST", help="user ids a root server gives spaces, one each"),
]
_MaxBody = Annotated[
    int, typer.Option(min=1024, help="bytes one request body may have (413 beyond)")
]
_MaxFollows = Annotated[
    int, typer.Option(min=1, help="logs followed at once, by everyone (429 beyond)")
]
_MaxFollowsPerUser = Annotated[
    int, typer.Option(min=1, help="logs followed at once by one user (429 beyond)")
]
_AdminOnlyRuntime = Annotated[
    list[str] | None,
    typer.Option(
        help="only admins may create spaces on this runtime (repeat for more; default: "
        "a runtime whose services would run as the server: process without a sandbox)"
    ),
]


def server(
    host: _Host = "127.0.0.1",
    port: _Port = 8470,
    data_dir: _DataDir = None,
    templates: _Templates = Path("templates"),
    db: _Db = None,
    reconcile_interval: _ReconcileInterval = 5.0,
    sweep_interval: _SweepInterval = 1.0,
    orphan_grace: _OrphanGrace = 30.0,
    workers: _Workers = 16,
    min_ttl: _MinTtl = "1m",
    copilot: _Copilot = False,
    log_level: _LogLevel = "info",
    config: _Config = None,
    kubeconfig: _Kubeconfig = None,
    kube_context: _KubeContext = None,
    namespace_prefix: _NamespacePrefix = "lb-",
    base_domain: _BaseDomain = "",
    allowed_host: _AllowedHost = None,
    process_isolation: _ProcessIsolation = "auto",
    service_uids: _ServiceUids = "600000-699999",
    max_body: _MaxBody = 1024 * 1024,
    max_follows: _MaxFollows = 200,
    max_follows_per_user: _MaxFollowsPerUser = 20,
    admin_only_runtime: _AdminOnlyRuntime = None,
) -> None:
    """Run the Launchbay server: API, portal and the engine's loops."""
    from launchbay.server import EngineSettings, FollowLimits, ServerSettings, default_data_dir

    _check_folder_and_intervals(templates, intervals=(sweep_interval, reconcile_interval))
    loaded = _load_config(config)
    kubernetes = _kubernetes_settings(
        kubeconfig=kubeconfig,
        context=kube_context,
        namespace_prefix=namespace_prefix,
        base_domain=base_domain,
    )
    # The arguments are evaluated in this order: the first bad flag is the one reported.
    settings = ServerSettings(
        kubernetes=kubernetes,
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
            min_ttl=timedelta(seconds=to_seconds(min_ttl)),
        ),
        admin_only_runtimes=_admin_only_runtimes(admin_only_runtime),
        follows=FollowLimits(per_user=max_follows_per_user, total=max_follows),
        allowed_hosts=tuple(allowed_host or ()),
        max_body=max_body,
        process=_process_settings(isolation=process_isolation, uids=service_uids),
    )
    _serve(settings)


def _check_folder_and_intervals(templates: Path, *, intervals: tuple[float, ...]) -> None:
    if not templates.is_dir():
        raise CliError(
            f"templates folder {templates} does not exist (--templates DIR)", ExitStatus.USAGE
        )
    if any(interval <= 0 for interval in intervals):
        raise CliError("intervals must be greater than zero", ExitStatus.USAGE)


def _load_config(path: Path | None) -> "ServerConfig":
    """The `--config` file; one that cannot be read or parsed is a usage error."""
    from launchbay.server import load_config

    with invalid_is_usage():
        return load_config(path)


def _kubernetes_settings(
    *, kubeconfig: str | None, context: str | None, namespace_prefix: str, base_domain: str
) -> "KubernetesSettings | None":
    """Team Spaces' settings: on with a kubeconfig or inside a pod (its service account and
    namespace come from the environment the pod spec sets); None otherwise."""
    from launchbay.server import KubernetesSettings

    if not (kubeconfig or os.environ.get("KUBERNETES_SERVICE_HOST")):
        return None
    return KubernetesSettings(
        kubeconfig=kubeconfig,
        context=context,
        namespace_prefix=namespace_prefix,
        own_namespace=os.environ.get("LAUNCHBAY_NAMESPACE"),
        base_domain=base_domain,
        service_account=os.environ.get("LAUNCHBAY_SERVICE_ACCOUNT"),
    )


def _admin_only_runtimes(names: list[str] | None) -> tuple[str, ...] | None:
    """The runtimes named by `--admin-only-runtime`; None (the server's default) when the
    flag is not given. An unknown name raises the registry's own error."""
    from launchbay.server import check_runtime_names

    if names is None:
        return None
    check_runtime_names(names, what="--admin-only-runtime")
    return tuple(names)


def _process_settings(*, isolation: str, uids: str) -> "ProcessSettings":
    """`--process-isolation` and `--service-uids` checked and parsed (FIRST-LAST, from 1000
    up, inclusive)."""
    from launchbay.server import ProcessSettings

    if isolation not in ("auto", "sandbox", "none"):
        message = f"--process-isolation must be auto, sandbox or none, not {isolation!r}"
        raise CliError(message, ExitStatus.USAGE)
    first, dash, last = uids.partition("-")
    if not (dash and first.isdigit() and last.isdigit() and 1000 <= int(first) < int(last) < 2**31):
        raise CliError(
            f"--service-uids {uids!r}: write FIRST-LAST, from 1000 up, e.g. 600000-699999",
            ExitStatus.USAGE,
        )
    mode = cast(Literal["auto", "sandbox", "none"], isolation)  # checked above
    return ProcessSettings(isolation=mode, uids=range(int(first), int(last) + 1))


def _serve(settings: "ServerSettings") -> None:
    """Serve until stopped. Once listening, the server is recorded as the `local` context,
    which becomes current if it was already or no other context is."""
    from launchbay.server import serve

    def record_local_context() -> None:
        ctx.set_context(
            "local",
            server=settings.url,
            token_file=str(settings.token_file),
            use=ctx.load().get("current", "local") == "local",
        )

    with invalid_is_usage():
        serve(settings, on_listening=record_local_context)
