"""Where the server is and which token to use: contexts, like kubectl's.

The config file lives in the XDG config folder. `bay server` records itself as the
`local` context (`local-PORT` while `local` points at another server that answers),
pointing at its admin token file rather than copying the token.
BAY_SERVER and BAY_TOKEN override whatever the context says; each resolved context says
where its server and its token came from, so that an error can name the one to mend.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from launchbay.cli.errors import CliError, ExitStatus

DEFAULT_SERVER = "http://127.0.0.1:8470"


def config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "launchbay" / "config.json"


def default_token_file() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "launchbay" / "admin-token"


OriginKind = Literal["flag", "env", "context", "input", "default", "none"]


@dataclass(frozen=True)
class Origin:
    """Where a server URL or a token came from: a flag, a BAY_* variable, a context (its
    `file`: the config file, or the token file it points at), what `bay login` read, the
    default, or nowhere."""

    kind: OriginKind
    name: str = ""
    file: str | None = None

    def __str__(self) -> str:
        if self.kind == "context":
            return f"context {self.name!r} ({self.file})"
        return self.name or self.kind


@dataclass(frozen=True)
class Context:
    name: str
    server: str
    token: str | None
    server_origin: Origin = Origin("default", "the default")
    token_origin: Origin = Origin("none", "nowhere")

    def origins(self) -> str:
        return f"server {self.server} from {self.server_origin}; token from {self.token_origin}"


def load() -> dict[str, Any]:
    path = config_path()
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {"current": "local", "contexts": {}}
    except (OSError, json.JSONDecodeError) as e:
        raise CliError(f"cannot read {path}: {e}") from e
    if not isinstance(data, dict):
        raise CliError(f"{path} is not a Launchbay config file")
    data.setdefault("contexts", {})
    return data


def save(data: dict[str, Any]) -> None:
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2)
    tmp.replace(path)


def set_context(
    name: str,
    *,
    server: str,
    token: str | None = None,
    token_file: str | None = None,
    use: bool = True,
) -> None:
    data = load()
    entry: dict[str, str] = {"server": server.rstrip("/")}
    if token:
        entry["token"] = token
    if token_file:
        entry["token_file"] = token_file
    data["contexts"][name] = entry
    if use:
        data["current"] = name
    save(data)


def forget_token(data: dict[str, Any], name: str) -> bool:
    """Remove the token a context holds, or the token file it points at, from `data`;
    False if it had neither. A `local` that no server has recorded gets an entry of its
    own: else it would still read the default token file."""
    entry = data["contexts"].get(name)
    if entry is None:  # `local`, which no server has recorded yet
        if _read_token_file(default_token_file()) is None:
            return False
        data["contexts"][name] = {"server": DEFAULT_SERVER}
        return True
    held = [key for key in ("token", "token_file") if key in entry]
    for key in held:
        del entry[key]
    return bool(held)


def chosen_name(data: dict[str, Any], name: str | None = None) -> str:
    """The context's name: `name`, else BAY_CONTEXT, else the current one; an unknown
    one is a usage error (`local` always exists: `bay server` makes it)."""
    chosen: str = name or os.environ.get("BAY_CONTEXT") or data.get("current") or "local"
    if chosen not in data["contexts"] and chosen != "local":
        raise CliError(f"no context named {chosen!r}; see `bay context list`", ExitStatus.USAGE)
    return chosen


def resolve(
    *, name: str | None = None, server: str | None = None, token: str | None = None
) -> Context:
    """The context to use: flags, then BAY_* variables, then the config file, then defaults."""
    data = load()
    chosen = chosen_name(data, name)
    entry: dict[str, str] | None = data["contexts"].get(chosen)
    saved = entry or {}
    url, server_origin = _first(
        (server, Origin("flag", "--server")),
        (os.environ.get("BAY_SERVER"), Origin("env", "BAY_SERVER")),
        (saved.get("server"), Origin("context", chosen, str(config_path()))),
        (DEFAULT_SERVER, Origin("default", "the default")),
    )
    file = _token_file(chosen, entry)
    secret, token_origin = _first(
        (token, Origin("flag", "--token")),
        (os.environ.get("BAY_TOKEN"), Origin("env", "BAY_TOKEN")),
        (saved.get("token"), Origin("context", chosen, str(config_path()))),
        (_read_token_file(file), Origin("context", chosen, str(file))),
        (None, Origin("none", "nowhere")),
    )
    return Context(chosen, (url or "").rstrip("/"), secret, server_origin, token_origin)


def _first(*candidates: tuple[str | None, Origin]) -> tuple[str | None, Origin]:
    """The first value given, with where it came from (the last candidate otherwise)."""
    return next(((v, o) for v, o in candidates if v), candidates[-1])


def _token_file(chosen: str, entry: dict[str, str] | None) -> Path | None:
    """The token file a context points at. Only the `local` context that no server has
    recorded yet falls back to the default one: any other would send the local admin token
    to its own server."""
    if entry is None:
        return default_token_file() if chosen == "local" else None
    return Path(entry["token_file"]) if "token_file" in entry else None


def _read_token_file(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        return path.read_text().strip() or None
    except OSError:
        return None
