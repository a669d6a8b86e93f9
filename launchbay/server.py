"""The composition root: settings, then store, runtimes, engine and app, then uvicorn."""

from __future__ import annotations

import fcntl
import functools
import ipaddress
import json
import logging
import os
import secrets
import socket
import sys
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field

from launchbay.api.app import create_app
from launchbay.api.follows import FollowLimits, Follows
from launchbay.api.guard import DEFAULT_MAX_BODY
from launchbay.domain.durations import parse_duration
from launchbay.domain.errors import Invalid, LaunchbayError, Refused
from launchbay.domain.hosts import LOOPBACK_NAMES, host_name
from launchbay.domain.notices import Channel, NotifyConfig, key_bytes
from launchbay.domain.template import Template
from launchbay.domain.webhooks import GitHubConfig
from launchbay.engine.accounts import ADMIN, Accounts
from launchbay.engine.assembly import Launchbay
from launchbay.engine.catalog import TemplateCatalog
from launchbay.engine.engine import Clock, Engine, EngineSettings, utcnow
from launchbay.engine.webhooks import GitHubHooks, mapping_problems
from launchbay.portal import routes as portal
from launchbay.portal.sessions import load_secret

__all__ = [
    "EngineSettings",
    "FollowLimits",
    "Given",
    "KubernetesSettings",
    "ProcessSettings",
    "ServerSettings",
    "Sources",
    "build",
    "check_runtime_names",
    "default_data_dir",
    "load_config",
    "load_settings",
    "printable",
    "serve",
    "settings_of",
]
from launchbay.reporters.github import GitHubReporter
from launchbay.runtimes import registry
from launchbay.runtimes.base import RuntimeContext
from launchbay.runtimes.kubernetes.kind import KubernetesSettings
from launchbay.runtimes.process import ProcessSettings
from launchbay.runtimes.registry import check_names as check_runtime_names
from launchbay.settings import DEFAULT_PORT, Given, SettingsTree, Sources, printable, shown
from launchbay.settings import load as load_settings
from launchbay.store.db import Store, sqlite_url

log = logging.getLogger("launchbay")


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "launchbay"


class ServerConfig(BaseModel):
    """The integrations' sections of the settings tree."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    github: GitHubConfig | None = None
    notifications: NotifyConfig = Field(default_factory=NotifyConfig)


def load_config(path: Path | None) -> ServerConfig:
    """The integrations a settings file configures (the environment left out)."""
    tree = load_settings(Sources(file=path, environ={}))
    return ServerConfig(github=tree.github, notifications=tree.notifications)


def settings_of(
    tree: SettingsTree, *, file: Path | None = None, environ: Mapping[str, str] | None = None
) -> ServerSettings:
    """What the server is built from: the tree, and the pod's facts from its environment."""
    server, env = tree.server, os.environ if environ is None else environ
    if server.admin_only_runtimes is not None:
        check_runtime_names(list(server.admin_only_runtimes), what="server.admin_only_runtimes")
    return ServerSettings(
        data_dir=(server.data_dir or default_data_dir()).resolve(),
        templates=server.templates.resolve(),
        host=server.host,
        port=server.port,
        db=tree.database.url,
        engine=tree.engine.engine(),
        log_level=server.log_level,
        config=ServerConfig(github=tree.github, notifications=tree.notifications),
        config_file=str(file) if file else "",
        kubernetes=tree.kubernetes.settings(env),
        follows=FollowLimits(per_user=server.max_follows_per_user, total=server.max_follows),
        allowed_hosts=server.allowed_hosts,
        max_body=server.max_body,
        process=tree.process.settings(),
        admin_only_runtimes=server.admin_only_runtimes,
        tree=tree,
    )


def read_secret(env: str | None, file: str | None, *, what: str, minimum: int) -> str:
    """A secret from an environment variable or a file; never a default."""
    if env:
        value = os.environ.get(env, "")
        where = f"environment variable {env}"
    elif file:
        try:
            value = Path(file).read_text().strip()
        except OSError as e:
            raise Invalid(f"cannot read the {what} file {file}: {e}") from e
        where = f"file {file}"
    else:
        raise Invalid(f"set the {what}'s _env or _file")
    if len(value) < minimum:
        raise Invalid(f"the {what} in {where} is missing or shorter than {minimum} characters")
    return value


def github_secret(config: GitHubConfig) -> bytes:
    """The webhook secret: webhooks are never accepted unsigned."""
    if not (config.secret_env or config.secret_file):
        raise Invalid("github: set secret_env or secret_file; webhooks are never accepted unsigned")
    return read_secret(
        config.secret_env, config.secret_file, what="GitHub webhook secret", minimum=16
    ).encode()


def server_channels(config: NotifyConfig) -> list[Channel]:
    """The config's channels; a JSON one signs with its secret, which it must have."""
    channels = []
    for i, channel in enumerate(config.channels):
        secret = b""
        if channel.kind == "json":
            secret = key_bytes(
                read_secret(
                    channel.secret_env,
                    channel.secret_file,
                    what=f"notifications.channels[{i}] signing key",
                    minimum=16,
                )
            )
        channels.append(Channel(kind=channel.kind, url=channel.url, secret=secret))
    return channels


def github_reporter(config: GitHubConfig) -> GitHubReporter | None:
    """Telling pull requests about their spaces, if `github.report` asks for it."""
    report = config.report
    if report is None:
        return None
    if not (report.token_env or report.token_file):
        raise Invalid(
            "github.report: set token_env or token_file (a token that may write "
            "deployments and issues)"
        )
    token = read_secret(report.token_env, report.token_file, what="GitHub token", minimum=8)
    return GitHubReporter(token=token, api_url=report.api_url, comment=report.comment)


@dataclass(frozen=True)
class ServerSettings:
    data_dir: Path
    templates: Path
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    db: str | None = None
    engine: EngineSettings = field(default_factory=EngineSettings)
    log_level: str = "info"
    config: ServerConfig = field(default_factory=ServerConfig)
    config_file: str = ""  # where `config` was read from, to name it in errors
    kubernetes: KubernetesSettings | None = None
    follows: FollowLimits = field(default_factory=FollowLimits)
    # Host names requests may carry besides the loopback ones (DNS rebinding): on a server
    # that listens beyond loopback and names none, any host is answered.
    allowed_hosts: tuple[str, ...] = ()
    max_body: int = DEFAULT_MAX_BODY  # bytes of one request body (webhooks have their own)
    process: ProcessSettings = field(default_factory=ProcessSettings)
    # Runtimes only admins may use; None: those whose services would run unconfined.
    admin_only_runtimes: tuple[str, ...] | None = None
    # The settings tree these were made from (for --print-config and the log).
    tree: SettingsTree = field(default_factory=SettingsTree)

    @property
    def db_url(self) -> str:
        return self.db or sqlite_url(self.data_dir)

    @property
    def url(self) -> str:
        """Where a client on this machine reaches the server (the CLI's `local` context)."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def loopback_only(self) -> bool:
        """Listens on a loopback address only: only loopback host names are answered."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    def answered_hosts(self) -> frozenset[str] | None:
        named = frozenset(host_name(h) for h in self.allowed_hosts)
        if self.loopback_only:
            return LOOPBACK_NAMES | named
        return named or None

    @property
    def token_file(self) -> Path:
        return self.data_dir / "admin-token"

    def private_paths(self) -> tuple[Path, ...]:
        """What no service may see: the data dir, the config file and every file a secret
        is read from."""
        config = self.config
        files = [self.config_file]
        if config.github is not None:
            files.append(config.github.secret_file or "")
            files.append((config.github.report.token_file or "") if config.github.report else "")
        files += [c.secret_file or "" for c in config.notifications.channels]
        if self.kubernetes is not None:
            files.append(self.kubernetes.kubeconfig or "")
        return (self.data_dir, *(Path(f).resolve() for f in files if f))

    def effective_tree(self) -> SettingsTree:
        """The tree as the server runs it: the defaults the server works out filled in."""
        server = self.tree.server.model_copy(
            update={"data_dir": self.data_dir, "templates": self.templates}
        )
        return self.tree.model_copy(update={"server": server})

    def describe(self) -> str:
        """The resolved settings, secrets redacted, for the log (one line)."""
        return json.dumps(shown(self.effective_tree()), separators=(",", ":"))


def runtime_problems(template: Template) -> tuple[list[str], list[str]]:
    """What the runtimes this machine has say of a template, for `bay template validate`
    (Compose validates a team's Compose file): their problems, and a note for each runtime
    that could not look (Docker not here, a runtime that needs a server's settings)."""
    problems: list[str] = []
    notes: list[str] = []
    context = RuntimeContext(Path(tempfile.gettempdir()) / "launchbay-validate")
    for kind in registry.KINDS.values():
        if kind.section not in template.sections():
            continue
        if kind.validate is not None:
            try:
                problems += kind.validate(template)
            except LaunchbayError as e:
                notes.append(f"not checked by the {kind.name} runtime: {e.message}")
            continue
        runtime = kind.make(context)
        if runtime is None:
            continue
        try:
            runtime.check_template(template)
        except (Invalid, Refused) as e:
            problems.append(e.message)
        except LaunchbayError as e:
            notes.append(f"not checked by the {kind.name} runtime: {e.message}")
        finally:
            runtime.close()
    return problems, notes


def check_settings(settings: ServerSettings) -> None:
    """Every mistake the settings hold, all at once, before anything is written (no data
    dir, token or database is made for a server that cannot start)."""
    config = settings.config
    where = f"{settings.config_file}: " if settings.config_file else ""
    checks: list[Callable[[], object]] = [lambda: server_channels(config.notifications)]
    if config.github is not None:
        github = config.github
        checks += [lambda: github_secret(github), lambda: github_reporter(github)]
    problems = []
    if not settings.templates.is_dir():
        problems.append(
            f"templates folder {settings.templates} does not exist (--templates DIR, or "
            "server.templates in the settings file)"
        )
    for check in checks:
        try:
            check()
        except Invalid as e:
            problems.append(where + e.message)
    if config.github is not None and settings.templates.is_dir():
        catalog = TemplateCatalog(settings.templates)
        problems += [where + p for p in mapping_problems(config.github, catalog)]
    shared = os.environ.get("LAUNCHBAY_SESSION_SECRET", "")
    if shared and len(shared) < 32:
        problems.append("LAUNCHBAY_SESSION_SECRET must be at least 32 characters")
    if problems:
        raise Invalid("; ".join(problems))


def private_data_dir(path: Path) -> None:
    """The data dir holds the admin token, the session secret and the database: 0700, and
    each file in it 0600, whatever an earlier version or a user's umask left."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.chmod(0o700)
    for entry in path.iterdir():
        if entry.is_file() and not entry.is_symlink():
            entry.chmod(0o600)


def build(settings: ServerSettings, *, clock: Clock = utcnow) -> FastAPI:
    private_data_dir(settings.data_dir)
    store = Store(settings.db_url)
    store.migrate()
    life = parse_duration(settings.tree.auth.key_max_life)
    accounts = Accounts(store, clock=clock, key_max_life=life)
    installation = accounts.installation()
    runtimes = registry.build(
        RuntimeContext(
            settings.data_dir,
            installation=installation,
            templates=settings.templates,
            private=settings.private_paths(),
            settings={"process": settings.process}
            | ({"kubernetes": settings.kubernetes} if settings.kubernetes else {}),
        )
    )
    restricted = settings.admin_only_runtimes
    if restricted is None:
        restricted = tuple(name for name, r in runtimes.items() if r.unconfined())
        for name in restricted:
            log.warning("the %s runtime is for admins only: %s", name, runtimes[name].unconfined())
    engine = Engine(
        store=store,
        runtimes=runtimes,
        catalog=TemplateCatalog(settings.templates),
        settings=replace(
            settings.engine,
            node=node_name(settings.data_dir),
            admin_only_runtimes=frozenset(restricted),
        ),
        clock=clock,
    )
    if accounts.bootstrap(settings.token_file):
        log.info("first start: admin token written to %s (mode 0600)", settings.token_file)
    notify = settings.config.notifications
    bay = Launchbay.of(
        engine,
        notify=notify,
        channels=server_channels(notify),
        public_url=settings.url,
        keep_audit=parse_duration(settings.tree.audit.keep),
        quota_settings=settings.tree.quotas.settings(),
    )
    github = None
    if settings.config.github is not None:
        github = GitHubHooks(
            engine=engine,
            requests=bay.requests,
            deploys=bay.deploys,
            audit=bay.audit,
            config=settings.config.github,
            secret=github_secret(settings.config.github),
            reporter=github_reporter(settings.config.github),
            portal_url=(settings.config.github.report and settings.config.github.report.portal_url)
            or settings.url,
        )
        problems = github.problems()
        if problems:
            where = f"{settings.config_file}: " if settings.config_file else ""
            raise Invalid("; ".join(f"{where}{problem}" for problem in problems))
        log.info(
            "GitHub webhooks on for %s",
            ", ".join(settings.config.github.repositories) or "no repository",
        )
    app = create_app(
        bay=bay,
        accounts=accounts,
        github=github,
        on_start=functools.partial(start, bay, github),
        follows=Follows(settings.follows),
        allowed_hosts=settings.answered_hosts(),
        max_body=settings.max_body,
    )
    app.state.installation = installation
    portal.install(app, bay=bay, accounts=accounts, secret=session_secret(settings.data_dir))
    return app


def start(bay: Launchbay, github: GitHubHooks | None) -> None:
    """Once the app serves: the engine's workers and loops, and the webhook workers."""
    bay.start()
    if github is not None:
        github.start()


def node_name(data_dir: Path) -> str:
    """This server's name among replicas, kept in its data folder: the same after a restart
    (it takes back its own spaces' jobs at once), different for every other server."""
    path = data_dir / "node"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        name = f"{socket.gethostname()[:40]}-{secrets.token_hex(4)}"
        path.write_text(name + "\n")
        return name


def session_secret(data_dir: Path) -> bytes:
    try:
        return load_secret(data_dir / "session-secret")
    except ValueError as e:
        raise Invalid(str(e)) from e


def own_data_dir(data_dir: Path) -> IO[str]:
    """One server per data dir: an exclusive lock held while it runs (released by the
    kernel if it dies), taken before anything in the data dir is written."""
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    lock = (data_dir / "server.lock").open("a+")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise Invalid(
            f"another Launchbay server uses the data dir {data_dir}; stop it, or give this "
            "one its own --data-dir"
        ) from None
    return lock


def listen(host: str, port: int) -> socket.socket:
    """The server's listening socket, bound before anything is written: a server that cannot
    listen (the port is taken) must change no token, no context and no state file."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit it: a response written as headers then body must not
    # wait for the client's delayed ACK (40 ms on every request of a kept-alive connection).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if host == "::":  # every address, IPv4 too: the recorded http://127.0.0.1 must answer
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as e:
        sock.close()
        raise Invalid(f"cannot listen on {host}:{port}: {e.strerror or e}") from e
    sock.set_inheritable(False)
    return sock


def serve(settings: ServerSettings, *, on_listening: Callable[[], None] | None = None) -> None:
    """Listen, build, then serve. `on_listening` runs once the port is ours and the app is
    built (the CLI records its `local` context there), never for a server that fails."""
    import uvicorn

    logging.basicConfig(
        level=settings.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    log.info("settings: %s", settings.describe())
    os.umask(0o077)  # every file the server writes is its own (services get 0022 back)
    check_settings(settings)
    lock = own_data_dir(settings.data_dir)
    try:
        sock = listen(settings.host, settings.port)
    except BaseException:
        lock.close()
        raise
    try:
        app = build(settings)
    except BaseException:
        sock.close()
        lock.close()
        raise
    state_file = settings.data_dir / "server.json"
    state_file.write_text(
        json.dumps(
            {"url": settings.url, "pid": os.getpid(), "token_file": str(settings.token_file)}
        )
    )
    if on_listening is not None:
        on_listening()
    print(
        f"Launchbay {settings.url}  (portal: {settings.url}/  API: {settings.url}/docs)", flush=True
    )
    print(f"admin token: {settings.token_file}", flush=True)
    admin = app.state.accounts.by_name(ADMIN)
    if admin is not None:
        link = app.state.accounts.signin_link(admin)
        print(f"sign in to the portal (once, within a minute): {settings.url}/signin/link/{link}")
        print("  (later: `bay portal` opens it signed in)", flush=True)
    try:
        config = uvicorn.Config(app, log_level="warning", lifespan="on")
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
        state_file.unlink(missing_ok=True)
        lock.close()
